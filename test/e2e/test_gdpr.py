"""Export and erasure of one address among many (GDPR art. 15/17/20), and
the suppression list: automatic after a hard bounce, refused at RCPT with
550 5.7.1, managed with ferryctl suppress."""
import json
import smtplib
import time
import unittest

from harness import Dns, Ferry, Receivers, SharedFerry, main

ALICE, BOB, CAROL = "alice.customer@a.example", "bob.customer@b.example", "carol@c.example"


def submit(f, sender, rcpts, subject="hello"):
    with smtplib.SMTP("127.0.0.1", f.port("relay"), timeout=10) as s:
        s.ehlo("app.example")
        s.docmd(f"MAIL FROM:<{sender}>")
        for r in rcpts:
            code, text = s.docmd(f"RCPT TO:<{r}>")
            assert code == 250, text
        code, text = s.data(f"Subject: {subject}\r\n\r\nbody\r\n".encode())
        assert code == 250, text
        return text.decode().split()[-1]


class Gdpr(SharedFerry):
    def test_export_then_erase_one_address_among_many(self):
        f = self.f
        only_alice = submit(f, "app@src.example", [ALICE], "for alice")
        shared = submit(f, "app@src.example", [ALICE, BOB], "for both")
        only_bob = submit(f, "app@src.example", [BOB], "for bob")
        from_carol = submit(f, CAROL, [BOB], "from carol")
        f.wait_log(r"deferred .*id=" + from_carol)
        rc, out, err = f.ctl("privacy", "export", "--address", ALICE)
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["address"], ALICE)
        self.assertTrue(doc["events"])
        self.assertTrue(all(ALICE in (e.get("rcpt"), e.get("from")) for e in doc["events"]))
        self.assertEqual({m["id"] for m in doc["queued_messages"]}, {only_alice, shared})
        # Erase: alice's events gone, bob's stay; her own message deleted,
        # the shared one keeps bob only.
        rc, out, err = f.ctl("privacy", "erase", "--address", ALICE)
        self.assertEqual(rc, 0, err)
        res = json.loads(out)
        self.assertGreater(res["events_deleted"], 0)
        self.assertEqual(res["messages_deleted"], 1)
        self.assertEqual(res["messages_updated"], 1)
        time.sleep(0.3)
        self.assertEqual(f.ctl("log", "search", "--address", ALICE, "--json")[1], "")
        # The address index lost her too (it is a live database, as mdb_dump shows it).
        index = f.spool_dump("log_addr")
        self.assertFalse([k for k in index if ALICE.encode() in k])
        self.assertTrue([k for k in index if BOB.encode() in k])
        self.assertIn(BOB, f.ctl("log", "search", "--address", BOB, "--json")[1])
        ids = f.spool_ids()
        self.assertNotIn(only_alice, ids)
        self.assertIn(shared, ids)
        self.assertIn(only_bob, ids)
        shown = json.loads(f.ctl("queue", "show", shared)[1])
        self.assertEqual([r["address"] for r in shown["rcpts"]], [BOB])
        self.assertEqual(json.loads(f.ctl("privacy", "export", "--address", ALICE)[1])["queued_messages"], [])
        # The audit line proves the erasure without naming her.
        line = [l for l in f.log().splitlines() if "privacy.erase" in l][-1]
        self.assertRegex(line, r"address_hash=[0-9a-f]{32}")
        self.assertNotIn(ALICE, line)
        # A sender's erasure removes the messages she sent.
        rc, out, _ = f.ctl("privacy", "erase", "--address", CAROL)
        self.assertEqual(json.loads(out)["messages_deleted"], 1)
        self.assertNotIn(from_carol, f.spool_ids())

    def test_suppress_commands_and_rcpt_refusal(self):
        f = self.f
        self.assertEqual(f.ctl("suppress", "add", "Blocked@Example.org", "--reason", "complaint")[0], 0)
        listed = json.loads(f.ctl("suppress", "list", "--json")[1])
        self.assertIn("blocked@example.org", [e["address"] for e in listed])
        with smtplib.SMTP("127.0.0.1", f.port("relay"), timeout=10) as s:
            s.ehlo("x")
            s.docmd("MAIL FROM:<app@src.example>")
            code, text = s.docmd("RCPT TO:<blocked@example.org>")
            self.assertEqual(code, 550)
            self.assertTrue(text.startswith(b"5.7.1 <blocked@example.org>: recipient is on the suppression list"))
        self.assertTrue(f.wait_log(r"smtp.suppressed .*rcpt=blocked@example.org"))
        time.sleep(0.2)  # the stored event follows the spool commit
        events = [json.loads(l) for l in
                  f.ctl("log", "search", "--address", "blocked@example.org", "--json")[1].splitlines()]
        self.assertEqual([(e["event"], e["code"], e["enhanced"]) for e in events], [("rejected", 550, "5.7.1")])
        self.assertEqual(f.ctl("suppress", "remove", "blocked@example.org")[0], 0)
        with smtplib.SMTP("127.0.0.1", f.port("relay"), timeout=10) as s:
            s.ehlo("x")
            s.docmd("MAIL FROM:<app@src.example>")
            self.assertEqual(s.docmd("RCPT TO:<blocked@example.org>")[0], 250)
        rc, _, err = f.ctl("suppress", "remove", "never@example.org")
        self.assertEqual(rc, 1)
        self.assertIn("not suppressed", err)


class AutoSuppression(unittest.TestCase):
    def test_hard_bounce_suppresses_and_erase_removes_it(self):
        dns = Dns(mx=[("c.test", "mx.c.test", 10)], hosts=[("mx.c.test", "127.0.0.11")])
        rx = Receivers(["127.0.0.11"])
        f = Ferry(listeners="\n  - name: relay\n    address: 127.0.0.1:0\n",
                  extra=f"dns:\n  servers: [\"127.0.0.1:{dns.port}\"]\ndelivery:\n  port: {rx.port}\n").start()
        try:
            submit(f, "", ["reject.me@c.test"])
            self.assertTrue(f.wait_log(r"bounced .*rcpt=reject.me@c.test"))
            deadline = time.time() + 10
            while time.time() < deadline and "reject.me@c.test" not in f.ctl("suppress", "list")[1]:
                time.sleep(0.05)
            self.assertIn("550 5.1.1", f.ctl("suppress", "list")[1])
            with smtplib.SMTP("127.0.0.1", f.port("relay"), timeout=10) as s:
                s.ehlo("x")
                s.docmd("MAIL FROM:<app@src.example>")
                self.assertEqual(s.docmd("RCPT TO:<reject.me@c.test>")[0], 550)
            doc = json.loads(f.ctl("privacy", "export", "--address", "reject.me@c.test")[1])
            self.assertEqual(len(doc["suppression"]), 1)
            # --keep-suppression keeps it (so the promise not to mail them holds).
            f.ctl("privacy", "erase", "--address", "reject.me@c.test", "--keep-suppression")
            self.assertIn("reject.me@c.test", f.ctl("suppress", "list")[1])
            f.ctl("privacy", "erase", "--address", "reject.me@c.test")
            time.sleep(0.2)
            self.assertNotIn("reject.me@c.test", f.ctl("suppress", "list")[1])
            self.assertEqual(f.stop(), 0)
        finally:
            f.cleanup()
            rx.stop()
            dns.stop()


if __name__ == "__main__":
    main()
