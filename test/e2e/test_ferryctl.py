"""ferryctl against a running ferryd: every command, human and --json
output, and the errors an admin meets (unknown id, bad usage, no daemon,
invalid config on reload)."""
import json
import re
import smtplib
import time
import unittest

from harness import SharedFerry, main


def submit(port, sender, rcpts):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo("app.example")
        s.docmd(f"MAIL FROM:<{sender}>")
        for r in rcpts:
            s.docmd(f"RCPT TO:<{r}>")
        code, text = s.data(b"Subject: ctl test\r\n\r\nbody\r\n")
        assert code == 250, text
        return text.decode().split()[-1]


class Ferryctl(SharedFerry):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        port = cls.f.port("relay")
        cls.ids = [submit(port, "app@src.example", ["one@a.example", "two@b.example"]),
                   submit(port, "app@src.example", ["three@a.example"]),
                   submit(port, "other@src.example", ["four@c.example"])]
        # All are deferred (connection refused) before the tests look.
        assert cls.f.wait_log(r"deferred .*rcpt=four@c.example")

    def ctl_json(self, *args):
        rc, out, err = self.f.ctl(*args, "--json")
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def test_status(self):
        st = self.ctl_json("status")
        self.assertGreaterEqual(st["counters"]["accepted"], 3)
        self.assertEqual({l["name"] for l in st["listeners"]}, {"submission", "smtps", "relay"})
        self.assertGreaterEqual(st["queue"]["messages"], 3)
        rc, out, _ = self.f.ctl("status")
        self.assertEqual(rc, 0)
        self.assertIn('"version"', out)

    def test_queue_summary(self):
        rows = {d["destination"]: d for d in self.ctl_json("queue", "summary")}
        self.assertEqual(rows["a.example"]["messages"], 2)
        self.assertEqual(rows["a.example"]["recipients"], 2)
        self.assertIn("connection refused", rows["a.example"]["last_error"])
        rc, out, _ = self.f.ctl("queue", "summary")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"(?m)^DESTINATION\s+MESSAGES\s+RCPTS\s+OLDEST\s+LAST ERROR$")
        self.assertRegex(out, r"(?m)^a\.example\s+2\s+2\s+\d+s\s+451 4\.4\.1")

    def test_queue_list_and_show(self):
        listed = {m["id"]: m for m in self.ctl_json("queue", "list")}
        for i in self.ids:
            self.assertIn(i, listed)
        self.assertEqual(listed[self.ids[0]]["rcpts"], ["one@a.example", "two@b.example"])
        shown = self.ctl_json("queue", "show", self.ids[0])
        self.assertEqual(shown["from"], "app@src.example")
        self.assertEqual([r["state"] for r in shown["rcpts"]], ["pending", "pending"])
        self.assertGreaterEqual(shown["rcpts"][0]["attempts"], 1)
        rc, out, _ = self.f.ctl("queue", "list")
        self.assertIn(self.ids[0], out)
        rc, _, err = self.f.ctl("queue", "show", "01AAAAAAAAAAAAAAAAAAAAAAAA")
        self.assertEqual(rc, 1)
        self.assertIn("no such message", err)

    def test_flush_makes_another_attempt(self):
        before = len(re.findall(r"deferred .*rcpt=four@c.example", self.f.log()))
        res = self.ctl_json("queue", "flush", "--domain", "c.example")
        self.assertEqual(res["flushed"], 1)
        deadline = time.time() + 10
        while time.time() < deadline and len(re.findall(r"deferred .*rcpt=four@c.example", self.f.log())) == before:
            time.sleep(0.05)
        self.assertRegex(self.f.log(), r"deferred .*rcpt=four@c.example .*attempt=2")
        rc, _, err = self.f.ctl("queue", "flush", "01AAAAAAAAAAAAAAAAAAAAAAAA")
        self.assertEqual(rc, 1)
        self.assertIn("no such message", err)

    def test_z_delete_and_bounce(self):
        victim, bounced = self.ids[1], self.ids[2]
        self.assertEqual(self.ctl_json("queue", "delete", victim)["id"], victim)
        self.assertNotIn(victim, self.f.spool_ids())
        events = [json.loads(l) for l in self.f.ctl("log", "search", "--address", "three@a.example", "--json")[1].splitlines()]
        self.assertEqual(events[-1]["event"], "deleted")
        self.ctl_json("queue", "bounce", bounced)
        self.assertNotIn(bounced, self.f.spool_ids())
        # The DSN to other@src.example is queued (held like everything here).
        dsn = [m for m in self.ctl_json("queue", "list") if m["rcpts"] == ["other@src.example"]]
        self.assertEqual(len(dsn), 1)
        self.assertEqual(dsn[0]["from"], "")
        rc, _, err = self.f.ctl("queue", "delete", "not-an-id")
        self.assertEqual(rc, 1)
        self.assertIn("not a message id", err)

    def test_log_search(self):
        rc, out, _ = self.f.ctl("log", "search", "--address", "one@a.example", "--json")
        self.assertEqual(rc, 0)
        events = [json.loads(l) for l in out.splitlines()]
        self.assertEqual({e["rcpt"] for e in events}, {"one@a.example"})
        self.assertEqual(events[0]["event"], "received")
        self.assertIn("deferred", {e["event"] for e in events})
        for field in ("ts", "event", "id", "from", "rcpt", "subject", "size", "client_ip", "auth_user"):
            self.assertIn(field, events[0])
        self.assertEqual(events[0]["subject"], "ctl test")
        deferred = [e for e in events if e["event"] == "deferred"][0]
        for field in ("code", "enhanced", "response", "attempt"):
            self.assertIn(field, deferred)
        # By sender: every recipient of its messages.
        rc, out, _ = self.f.ctl("log", "search", "--address", "other@src.example", "--json")
        self.assertIn("four@c.example", out)
        rc, out, _ = self.f.ctl("log", "search", "--address", "one@a.example", "--since", "1d")
        self.assertRegex(out, r"(?m)^TIME\s+EVENT\s+ID")
        rc, out, _ = self.f.ctl("log", "search", "--address", "one@a.example", "--since", "2999-01-01", "--json")
        self.assertEqual(out, "")
        rc, _, err = self.f.ctl("log", "search")
        self.assertEqual(rc, 2)

    def test_reload(self):
        self.assertEqual(self.f.ctl("reload")[0], 0)
        original = open(self.f.config_path).read()
        try:
            open(self.f.config_path, "w").write(original + "limits:\n  max_recipients: lots\n")
            rc, _, err = self.f.ctl("reload")
            self.assertEqual(rc, 1)
            self.assertRegex(err, re.escape(self.f.config_path) + r":\d+:\d+: 'lots' is not a whole number")
        finally:
            open(self.f.config_path, "w").write(original)
        self.assertGreaterEqual(self.ctl_json("status")["counters"]["reloads_failed"], 1)

    def test_usage_and_no_daemon(self):
        self.assertEqual(self.f.ctl("frobnicate")[0], 2)
        self.assertEqual(self.f.ctl("queue", "show")[0], 2)
        import subprocess
        from harness import FERRYCTL
        out = subprocess.run([FERRYCTL, "-s", "/nonexistent/ferry.sock", "status"], capture_output=True, text=True)
        self.assertEqual(out.returncode, 3)
        self.assertIn("cannot reach ferryd", out.stderr)


if __name__ == "__main__":
    main()
