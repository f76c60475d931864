"""delivery_log.file: committed delivery-log events as JSON lines, the same
events as the log database; rotated files past the retention deleted at
start; a leftover file of an earlier day rotated; SIGUSR1 reopens after an
external move; privacy erase rewrites the files; a reload to a path that
cannot be opened keeps the old file."""
import datetime
import json
import os
import signal
import smtplib
import stat
import time
import unittest

from harness import Ferry, main, wait_for

ALICE, BOB = "alice.file@a.example", "bob.file@b.example"


def submit(f, rcpts, subject):
    with smtplib.SMTP("127.0.0.1", f.port("relay"), timeout=10) as s:
        s.ehlo("app.example")
        s.docmd("MAIL FROM:<app@src.example>")
        for r in rcpts:
            assert s.docmd(f"RCPT TO:<{r}>")[0] == 250
        code, text = s.data(f"Subject: {subject}\r\n\r\nbody\r\n".encode())
        assert code == 250, text
        return text.decode().split()[-1]


def lines(path):
    with open(path) as fh:
        return [json.loads(l) for l in fh.read().splitlines()]



class EventFile(unittest.TestCase):
    def setUp(self):
        self.f = Ferry()
        self.events = os.path.join(self.f.dir, "events")
        os.mkdir(self.events)
        self.path = os.path.join(self.events, "events.jsonl")
        today = datetime.datetime.now(datetime.timezone.utc).date()
        self.yesterday = (today - datetime.timedelta(days=1)).isoformat()
        self.old = (today - datetime.timedelta(days=31)).isoformat()
        self.kept = (today - datetime.timedelta(days=29)).isoformat()
        alice_line = json.dumps({"event": "delivered", "rcpt": ALICE, "from": "x@y.example"})
        bob_line = json.dumps({"event": "delivered", "rcpt": BOB, "from": "x@y.example"})
        with open(f"{self.path}.{self.old}", "w") as fh:
            fh.write(bob_line + "\n")
        with open(f"{self.path}.{self.kept}", "w") as fh:
            fh.write(alice_line + "\n" + bob_line + "\n")
        with open(os.path.join(self.events, "unrelated.log"), "w") as fh:
            fh.write(ALICE + "\n")
        # A file ferryd left behind yesterday: rotated when it starts.
        with open(self.path, "w") as fh:
            fh.write(bob_line + "\n")
        t = time.time() - 86400
        os.utime(self.path, (t, t))
        self.extra = f"delivery_log:\n  retention: 30d\n  file: events/events.jsonl\n"
        self.f.write_config(extra=self.extra)
        self.f.start()

    def tearDown(self):
        self.f.cleanup()

    def test_stream_rotation_reopen_erase_and_reload(self):
        f = self.f
        # Start-up: the expired day is gone, the kept one stays, yesterday's
        # leftover was rotated, files of other names are untouched.
        self.assertFalse(os.path.exists(f"{self.path}.{self.old}"))
        self.assertEqual(len(lines(f"{self.path}.{self.kept}")), 2)
        self.assertEqual([e["rcpt"] for e in lines(f"{self.path}.{self.yesterday}")], [BOB])
        self.assertTrue(os.path.exists(os.path.join(self.events, "unrelated.log")))
        self.assertTrue(f.wait_log(r"delivery_log.file_deleted path=\S+" + self.old))

        both = submit(f, [ALICE, BOB], "for both")
        self.assertTrue(f.wait_log(r"deferred .*id=" + both + r" .*rcpt=" + BOB))
        self.assertTrue(wait_for(lambda: os.path.exists(self.path) and
                                 sum(e["event"] == "deferred" for e in lines(self.path)) == 2))
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o640)
        streamed = lines(self.path)
        self.assertTrue(all(e["id"] == both for e in streamed))
        self.assertEqual(sorted((e["event"], e["rcpt"]) for e in streamed),
                         [("deferred", ALICE), ("deferred", BOB), ("received", ALICE), ("received", BOB)])
        # The same events as the log database, field for field.
        rc, out, err = f.ctl("log", "search", "--address", ALICE, "--json")
        self.assertEqual(rc, 0, err)
        stored = [json.loads(l) for l in out.splitlines()]
        self.assertEqual(sorted(json.dumps(e, sort_keys=True) for e in stored),
                         sorted(json.dumps(e, sort_keys=True) for e in streamed if e["rcpt"] == ALICE))

        # An external logrotate moves the file and sends SIGUSR1.
        os.rename(self.path, self.path + ".1")
        f.proc.send_signal(signal.SIGUSR1)
        self.assertTrue(f.wait_log(r"log.reopen target=\S+events.jsonl"))
        second = submit(f, [ALICE], "second")
        self.assertTrue(f.wait_log(r"deferred .*id=" + second))
        self.assertTrue(wait_for(lambda: os.path.exists(self.path) and len(lines(self.path)) == 2))
        self.assertEqual({e["id"] for e in lines(self.path)}, {second})
        self.assertEqual({e["id"] for e in lines(self.path + ".1")}, {both})

        # Erase rewrites ferryd's own files: FILE and FILE.YYYY-MM-DD.
        rc, out, err = f.ctl("privacy", "erase", "--address", ALICE)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["file_lines_deleted"], 3)  # 2 in FILE, 1 in the kept day
        self.assertEqual(lines(self.path), [])
        self.assertEqual([e["rcpt"] for e in lines(f"{self.path}.{self.kept}")], [BOB])
        # New events go to the rewritten file.
        third = submit(f, [BOB], "third")
        self.assertTrue(wait_for(lambda: any(e["id"] == third for e in lines(self.path))))
        self.assertFalse(any(ALICE in l for l in open(self.path)))

        # A reload to a path that cannot be opened fails and keeps the file.
        f.write_config(extra="delivery_log:\n  retention: 30d\n  file: no-such-dir/events.jsonl\n")
        f.proc.send_signal(signal.SIGHUP)
        self.assertTrue(f.wait_log(r"reload.failed .*no-such-dir/events.jsonl"))
        fourth = submit(f, [BOB], "fourth")
        self.assertTrue(wait_for(lambda: any(e["id"] == fourth for e in lines(self.path))))
        # Turning the file off by reload stops the stream.
        f.write_config(extra="")
        f.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: f.log().count("reload.ok") == 1))
        fifth = submit(f, [BOB], "fifth")
        self.assertTrue(f.wait_log(r"deferred .*id=" + fifth))
        time.sleep(0.2)
        self.assertFalse(any(e["id"] == fifth for e in lines(self.path)))
        self.assertEqual(f.stop(), 0)

    def test_unwritable_path_refuses_to_start(self):
        self.f.stop()
        self.f.write_config(extra="delivery_log:\n  file: no-such-dir/events.jsonl\n")
        self.f.start(expect_ready=False)
        rc = self.f.proc.wait(15)
        self.assertNotEqual(rc, 0)
        self.assertTrue(self.f.wait_log(r"no-such-dir/events.jsonl: No such file or directory"))


if __name__ == "__main__":
    main()
