"""A full filesystem under the spool: refuse with 452, lose nothing, recover.

    smtplib ──► ferryd ──► aiosmtpd MX 127.0.0.2 (greylists each address
                  │        for its first seconds, so outcomes are written
                  │        while the disk is full)
                  └── spool on its own small tmpfs, filled up by a file

Not spool.max_size: the filesystem itself runs out. New mail must get
452 4.3.1 (never 451, never a 250 for something not stored); mail already
accepted must survive and drain once space returns, without a restart, each
recipient exactly once; SIGTERM must stop ferryd within the shutdown
timeout even while writes fail; a restart afterwards recovers nothing and
finds no orphan.
"""
import collections
import os
import smtplib
import subprocess
import time
import unittest

from harness import Dns, Ferry, main, Receivers, wait_for

A = "127.0.0.2"
RELAY = """
  - name: relay
    address: 127.0.0.1:0
    tls: none
    auth: none
"""
FS_SIZE = 8 * 1024 * 1024



class FullDisk(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        self.dns = Dns(mx=[("a.test", "mx.a.test", 10)], hosts=[("mx.a.test", A)])
        self.rx = Receivers([A], grey_seconds=2)
        self.f = Ferry(listeners=RELAY, extra=(
            f"dns:\n  servers: [\"127.0.0.1:{self.dns.port}\"]\n"
            f"delivery:\n  port: {self.rx.port}\n  connect_timeout: 2s\n"
            f"  retry: {{ min_backoff: 1s, max_backoff: 1s, max_lifetime: 1h }}\n"))
        os.makedirs(self.f.spool)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE},mode=0700", "tmpfs", self.f.spool],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs here: " + r.stderr.strip())
        self.mounted = True
        self.filler = os.path.join(self.f.spool, "filler")

    def tearDown(self):
        self.f.kill()
        if getattr(self, "mounted", False):
            subprocess.run(["umount", "-l", self.f.spool])
        self.f.cleanup()
        self.rx.stop()
        self.dns.stop()

    def fill(self, leave):
        """Writes a file that leaves about `leave` bytes free."""
        st = os.statvfs(self.f.spool)
        free = st.f_bavail * st.f_frsize
        with open(self.filler, "wb") as out:
            out.write(b"\0" * max(0, free - leave))

    def submit_until_refused(self):
        """Sends 100 KB messages until the spool refuses three in a row:
        (accepted recipients, refusal replies)."""
        accepted, refusals = [], []
        body = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 100
        with smtplib.SMTP("127.0.0.1", self.f.port("relay"), timeout=30) as s:
            s.ehlo("app.example")
            for i in range(200):
                rcpt = f"grey{i}@a.test"
                code, text = s.mail("app@src.test")
                if code == 250:
                    code, text = s.rcpt(rcpt)
                if code == 250:
                    code, text = s.data(body)
                if code == 250:
                    accepted.append(rcpt)
                    refusals.clear()
                else:
                    refusals.append((code, text.decode()))
                    s.rset()
                    if len(refusals) == 3:
                        break
        return accepted, refusals

    def delivered(self):
        count = collections.Counter()
        for env, _ in self.rx.messages(A):
            for line in env:
                if line.startswith("RCPT TO "):
                    count[line[len("RCPT TO "):]] += 1
        return count

    def test_full_filesystem_refuses_with_452_then_drains_when_space_returns(self):
        self.f.start()
        self.fill(leave=1536 * 1024)
        accepted, refusals = self.submit_until_refused()
        self.assertTrue(accepted, f"nothing was accepted before the disk filled: {refusals}")
        self.assertEqual(len(refusals), 3, "the disk never filled up")
        for code, text in refusals:
            self.assertEqual(code, 452, text)
            self.assertIn("4.3.1", text)
        # Now take the last byte too, so that even the writes that may use
        # the reserve fail. Deliveries go on meanwhile: greylisting defers
        # each recipient at first, so outcomes have to be written, fail,
        # and are kept in memory to be written again.
        rest = os.path.join(self.f.spool, "rest")
        fd = os.open(rest, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096) > 0:
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        self.assertTrue(self.f.wait_log(r"delivery\.spool_update .*retry=yes", 15), self.f.log()[-3000:])
        time.sleep(2)
        os.unlink(rest)
        os.unlink(self.filler)
        self.assertTrue(wait_for(lambda: set(self.delivered()) >= set(accepted), 60),
                        f"{len(self.delivered())} of {len(accepted)} accepted recipients arrived\n" + self.f.log()[-4000:])
        time.sleep(2)
        got = self.delivered()
        self.assertEqual({r: n for r, n in got.items() if n != 1}, {})
        self.assertEqual(set(got), set(accepted))
        self.assertTrue(wait_for(lambda: self.f.spool_entries("msg") == 0, 20), self.f.ctl("queue", "list")[1])
        self.assertEqual(self.f.spool_entries("body"), 0)
        self.assertEqual(self.f.spool_entries("sched"), 0)
        # New mail is accepted again.
        with smtplib.SMTP("127.0.0.1", self.f.port("relay"), timeout=30) as s:
            s.sendmail("app@src.test", ["after@a.test"], b"Subject: after\r\n\r\nx\r\n")
        self.assertTrue(wait_for(lambda: "after@a.test" in self.delivered(), 30))
        self.assertEqual(self.f.stop(), 0)
        self.f.start()
        self.assertTrue(self.f.wait_log(r"spool\.recovered messages=0 "), self.f.log())
        self.assertEqual(self.f.stop(), 0)
        for bad in ("sched_orphan", "body_missing"):
            self.assertNotIn(bad, self.f.log())

    def test_sigterm_on_a_full_disk_exits_within_the_shutdown_timeout(self):
        self.f.start()
        self.fill(leave=1536 * 1024)
        accepted, refusals = self.submit_until_refused()
        self.assertTrue(accepted, refusals)
        time.sleep(2)
        started = time.time()
        rc = self.f.stop(timeout=20)
        self.assertEqual(rc, 0)
        self.assertLess(time.time() - started, 5 + 2 + 3)  # shutdown_timeout 5s + grace 2s + margin
        # Nothing accepted is lost: with space back, a new ferryd delivers it all.
        os.unlink(self.filler)
        self.f.start()
        self.assertTrue(wait_for(lambda: set(self.delivered()) >= set(accepted), 60),
                        f"{len(self.delivered())} of {len(accepted)} accepted recipients arrived")
        self.assertEqual(self.f.stop(), 0)


if __name__ == "__main__":
    main()
