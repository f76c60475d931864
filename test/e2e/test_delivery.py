"""Delivery end to end: the real ferryd resolves MX records from a real DNS
server (dnsmasq) and delivers to real receiving SMTP servers (aiosmtpd) on
other loopback addresses, retries, bounces with DSNs, expires, and leaves
an empty spool behind."""
import os
import re
import smtplib
import threading
import time
import unittest

from harness import PASSWORD, Dns, Ferry, Raw, Receivers, main, strip_received

A, B, C, DEAD, BACKUP2, SRC, UNREACH = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5",
                                        "127.0.0.6", "127.0.0.7", "127.0.0.8")
RELAY = """
  - name: relay
    address: 127.0.0.1:0
"""


def world_config(dns, rx, lifetime="1h"):
    return (f"dns:\n  servers: [\"127.0.0.1:{dns.port}\"]\n"
            f"delivery:\n  port: {rx.port}\n  connections_per_destination: 3\n"
            f"  idle_timeout: 2s\n  connect_timeout: 2s\n"
            f"  retry: {{ min_backoff: 1s, max_backoff: 2s, max_lifetime: {lifetime} }}\n")


def submit(port, sender, rcpts, body):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo("app.example")
        code, text = s.docmd(f"MAIL FROM:<{sender}>")
        assert code == 250, text
        for r in rcpts:
            code, text = s.docmd(f"RCPT TO:<{r}>")
            assert code == 250, text
        code, text = s.data(body)
        assert code == 250, text
        return text.decode().split()[-1]


class Delivery(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = Dns(
            mx=[("a.test", "mx.a.test", 10), ("b.test", "mx.b.test", 10), ("c.test", "mx.c.test", 10),
                ("src.test", "mx.src.test", 10), ("nullmx.test", ".", 0),
                ("backup.test", "mx1.backup.test", 10), ("backup.test", "mx2.backup.test", 20)],
            hosts=[("mx.a.test", A), ("mx.b.test", B), ("mx.c.test", C), ("mx.src.test", SRC),
                   ("mx1.backup.test", DEAD), ("mx2.backup.test", BACKUP2)])
        cls.rx = Receivers([A, B, C, BACKUP2, SRC])
        cls.f = Ferry(listeners=RELAY, extra=world_config(cls.dns, cls.rx)).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.f.stop()
        cls.f.cleanup()
        cls.rx.stop()
        cls.dns.stop()
        assert rc == 0

    def test_1_three_domains_byte_exact(self):
        body = (b"From: app@src.test\r\nTo: x@a.test, y@b.test, z@c.test\r\nSubject: three\r\n\r\n"
                b".leading dot line\r\nline two\r\n")
        submit(self.f.port("relay"), "app@src.test", ["x@a.test", "y@b.test", "z@c.test"], body)
        for ip, rcpt in ((A, "x@a.test"), (B, "y@b.test"), (C, "z@c.test")):
            got = [m for m in self.rx.wait_count(ip, 1) if f"RCPT TO {rcpt}" in m[0]]
            self.assertEqual(len(got), 1, ip)
            env, raw = got[0]
            self.assertIn("MAIL FROM app@src.test", env)
            self.assertEqual(strip_received(raw), body)
        self.assertTrue(self.f.wait_log(r"info delivered id=\S+ from=app@src.test rcpt=z@c.test mx=mx.c.test"))

    def test_2_connections_per_destination_are_bounded(self):
        before = len(self.rx.messages(A))
        sent = []

        def worker(n):
            r = Raw(self.f.port("relay"))
            r.reply()
            r.send(b"EHLO load\r\n")
            r.reply()
            for i in range(n):
                r.send(b"MAIL FROM:<load@src.test>\r\nRCPT TO:<bulk@a.test>\r\nDATA\r\n")
                [r.reply() for _ in range(3)]
                r.send(b"Subject: bulk %d\r\n\r\nbody\r\n.\r\n" % i)
                if r.reply()[0] == 250:
                    sent.append(1)
            r.send(b"QUIT\r\n")

        threads = [threading.Thread(target=worker, args=(20,)) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(sent), 200)
        got = self.rx.wait_count(A, before + 200, timeout=60)
        self.assertEqual(len(got), before + 200)
        stats = self.rx.stats(A)
        self.assertLessEqual(stats["peak"], 3, stats)  # connections_per_destination
        self.assertLess(stats["total"], 60, stats)     # connections were reused

    def test_3_temporary_failure_is_retried(self):
        submit(self.f.port("relay"), "app@src.test", ["tempfail1@b.test"], b"Subject: retry\r\n\r\nx\r\n")
        got = [m for m in self.rx.wait_count(B, 2, timeout=30) if "RCPT TO tempfail1@b.test" in m[0]]
        deadline = time.time() + 30
        while not got and time.time() < deadline:
            time.sleep(0.1)
            got = [m for m in self.rx.messages(B) if "RCPT TO tempfail1@b.test" in m[0]]
        self.assertEqual(len(got), 1)
        self.assertTrue(self.f.wait_log(r"warn deferred .*rcpt=tempfail1@b.test .*451 4.3.0"))
        self.assertTrue(self.f.wait_log(r"delivered .*rcpt=tempfail1@b.test .*attempt=2"))

    def _dsns(self, marker):
        out = []
        for env, raw in self.rx.messages(SRC):
            if marker.encode() in raw:
                out.append((env, raw))
        return out

    def _wait_dsn(self, marker, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            d = self._dsns(marker)
            if d:
                return d
            time.sleep(0.1)
        self.fail("no DSN mentioning " + marker + "\n" + self.f.log()[-3000:])

    def test_4_bounce_sends_dsn_to_sender_domain(self):
        submit(self.f.port("relay"), "app@src.test", ["reject1@c.test"], b"Subject: bounce me\r\n\r\nx\r\n")
        env, raw = self._wait_dsn("Final-Recipient: rfc822; reject1@c.test")[0]
        self.assertEqual(env[0], "MAIL FROM <>")  # DSNs use the null sender
        self.assertIn(b"Content-Type: multipart/report; report-type=delivery-status", raw)
        self.assertIn(b"Action: failed\r\nStatus: 5.1.1\r\n", raw)
        self.assertIn(b"Remote-MTA: dns; mx.c.test", raw)
        self.assertIn(b"Diagnostic-Code: smtp; 550 5.1.1 <reject1@c.test>: no such user", raw)
        self.assertIn(b"Subject: bounce me", raw)  # the original headers come back
        self.assertTrue(self.f.wait_log(r"info bounced .*rcpt=reject1@c.test"))

    def test_5_null_mx_bounces_at_once(self):
        submit(self.f.port("relay"), "app@src.test", ["someone@nullmx.test"], b"Subject: n\r\n\r\nx\r\n")
        env, raw = self._wait_dsn("Final-Recipient: rfc822; someone@nullmx.test", timeout=15)[0]
        self.assertIn(b"Status: 5.1.10", raw)

    def test_6_dead_primary_falls_back_to_secondary(self):
        submit(self.f.port("relay"), "app@src.test", ["user@backup.test"], b"Subject: b\r\n\r\nx\r\n")
        got = self.rx.wait_count(BACKUP2, 1)
        self.assertTrue(any("RCPT TO user@backup.test" in e for e, _ in got))

    def test_7_no_dsn_for_null_sender(self):
        before = len(self.rx.messages(SRC))
        submit(self.f.port("relay"), "", ["reject2@c.test"], b"Subject: from nobody\r\n\r\nx\r\n")
        self.assertTrue(self.f.wait_log(r"info bounced .*rcpt=reject2@c.test"))
        time.sleep(1)
        self.assertFalse(self._dsns("reject2@c.test"))
        self.assertGreaterEqual(len(self.rx.messages(SRC)), before)

    def test_9_spool_is_empty_when_all_is_final(self):
        # Runs last (name order): every message above is final by now or soon.
        deadline = time.time() + 30
        while time.time() < deadline and (self.f.spool_ids() or self.f.spool_dump("body")):
            time.sleep(0.2)
        self.assertEqual(self.f.spool_ids(), set())
        self.assertEqual(self.f.spool_dump("body"), {})
        self.assertEqual(self.f.spool_dump("sched"), {})


class Expiry(unittest.TestCase):
    def test_unreachable_destination_expires_with_dsn(self):
        dns = Dns(mx=[("unreach.test", "mx.unreach.test", 10), ("src.test", "mx.src.test", 10)],
                  hosts=[("mx.unreach.test", UNREACH), ("mx.src.test", SRC)])
        rx = Receivers([SRC])
        f = Ferry(listeners=RELAY, extra=world_config(dns, rx, lifetime="3s")).start()
        try:
            submit(f.port("relay"), "app@src.test", ["lost@unreach.test"], b"Subject: doomed\r\n\r\nx\r\n")
            got = rx.wait_count(SRC, 1, timeout=30)
            self.assertEqual(len(got), 1, f.log()[-2000:])
            env, raw = got[0]
            self.assertIn(b"Final-Recipient: rfc822; lost@unreach.test", raw)
            self.assertIn(b"Action: failed\r\nStatus: 4.4.7", raw)
            self.assertTrue(f.wait_log(r"info expired .*rcpt=lost@unreach.test"))
            self.assertEqual(f.stop(), 0)
            self.assertEqual(f.spool_ids(), set())
        finally:
            f.cleanup()
            rx.stop()
            dns.stop()


class Smarthost(unittest.TestCase):
    """ferry → a second ferryd as smarthost: route "*", STARTTLS required
    (delivery.tls: encrypt), AUTH PLAIN with a password from a file."""

    def test_route_with_starttls_and_auth(self):
        upstream = Ferry().start()  # submission listener: STARTTLS + AUTH required
        pwfile = None
        f = None
        try:
            pwfile = os.path.join(upstream.dir, "route.pw")
            with open(pwfile, "w") as p:
                p.write(PASSWORD + "\n")
            f = Ferry(listeners=RELAY, extra=(
                "delivery:\n  tls: encrypt\n  retry: { min_backoff: 1s, max_backoff: 2s, max_lifetime: 1h }\n"
                "  routes:\n    - { domain: \"*\", host: \"127.0.0.1:%d\", username: alice, "
                "password_file: \"%s\" }\n" % (upstream.port("submission"), pwfile))).start()
            msg_id = submit(f.port("relay"), "app@src.test", ["someone@example.org"], b"Subject: via smarthost\r\n\r\nx\r\n")
            self.assertTrue(upstream.wait_log(r"info received id=\S+ from=app@src.test nrcpt=1 .*auth_user=alice tls=TLSv1\.[23] listener=submission"),
                            upstream.log()[-2000:] + f.log()[-2000:])
            self.assertTrue(f.wait_log(r"info delivered id=%s .*rcpt=someone@example.org mx=127.0.0.1 tls=TLSv1\.[23]" % msg_id))
            # No STARTTLS on the upstream's relay port: encrypt refuses to go on, and
            # the credentials are never sent.
            self.assertEqual(f.stop(), 0)
            f.write_config(RELAY, (
                "delivery:\n  tls: encrypt\n  retry: { min_backoff: 1s, max_backoff: 2s, max_lifetime: 1h }\n"
                "  routes:\n    - { domain: \"*\", host: \"127.0.0.1:%d\", username: alice, "
                "password_file: \"%s\" }\n" % (upstream.port("relay"), pwfile)))
            f.start()
            submit(f.port("relay"), "app@src.test", ["other@example.org"], b"Subject: no tls\r\n\r\nx\r\n")
            self.assertTrue(f.wait_log(r"warn deferred .*rcpt=other@example.org .*does not offer STARTTLS"))
            self.assertNotIn("smtp.auth", upstream.log().split("listener=submission")[-1])
        finally:
            if f:
                self.assertEqual(f.stop(), 0)
                f.cleanup()
            self.assertEqual(upstream.stop(), 0)
            upstream.cleanup()


if __name__ == "__main__":
    main()
