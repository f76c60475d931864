"""Submission with Python smtplib: STARTTLS + AUTH PLAIN/LOGIN, implicit TLS,
and every refusal a client can meet on the way (wrong password, no TLS, no
AUTH, relay from outside trusted networks, size and recipient limits)."""
import re
import smtplib
import unittest

from harness import PASSWORD, Ferry, Raw, client_tls_context, main

MSG = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhello\r\n"


def queued_id(reply_text):
    m = re.search(r"queued as ([0-9A-Z]{26})", reply_text)
    assert m, reply_text
    return m.group(1)


class Submission(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.f = Ferry(extra="limits:\n  max_message_size: 100KB\n  max_recipients: 3\n"
                            "relay:\n  trusted_networks: [127.0.0.1/32]\n").start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.f.stop()
        cls.f.cleanup()
        assert rc == 0, f"ferryd exited {rc}"

    def send_ok(self, s):
        code, text = s.docmd("MAIL FROM:<a@example.com>")
        self.assertEqual(code, 250)
        self.assertEqual(s.docmd("RCPT TO:<b@example.org>")[0], 250)
        code, text = s.data(MSG)
        self.assertEqual(code, 250, text)
        return queued_id(text.decode())

    def test_starttls_auth_plain(self):
        with smtplib.SMTP("127.0.0.1", self.f.port("submission"), timeout=10) as s:
            s.ehlo("app.example")
            self.assertIn("starttls", s.esmtp_features)
            self.assertNotIn("auth", s.esmtp_features)  # never offered in clear
            s.starttls(context=client_tls_context())
            s.ehlo("app.example")
            self.assertIn("PLAIN", s.esmtp_features["auth"])
            s.login("alice", PASSWORD, initial_response_ok=True)
            msg_id = self.send_ok(s)
        self.assertIn(msg_id, self.f.spool_ids())
        body = self.f.spool_body(msg_id)
        self.assertTrue(body.startswith(b"Received: from app.example ([127.0.0.1])"))
        self.assertIn(b"with ESMTPSA id " + msg_id.encode(), body)
        self.assertRegex(body.decode(), r"using TLSv1\.[23] with cipher")
        self.assertTrue(body.endswith(MSG))

    def test_starttls_auth_login(self):
        with smtplib.SMTP("127.0.0.1", self.f.port("submission"), timeout=10) as s:
            s.starttls(context=client_tls_context())
            s.ehlo("app.example")
            s.user, s.password = "bob", PASSWORD
            code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
            self.assertEqual(code, 235)
            self.send_ok(s)

    def test_implicit_tls(self):
        with smtplib.SMTP_SSL("127.0.0.1", self.f.port("smtps"), timeout=10,
                              context=client_tls_context()) as s:
            s.login("alice", PASSWORD)
            self.send_ok(s)

    def test_wrong_password_then_lockout(self):
        with smtplib.SMTP("127.0.0.1", self.f.port("submission"), timeout=10) as s:
            s.starttls(context=client_tls_context())
            s.ehlo("app.example")
            wrong = "AUTH PLAIN AGFsaWNlAHdyb25n"  # \0alice\0wrong
            for _ in range(2):
                self.assertEqual(s.docmd(wrong), (535, b"5.7.8 Authentication credentials invalid"))
            unknown = "AUTH PLAIN AG5vYm9keQBzM2NyZXQtcHc="  # \0nobody\0s3cret-pw
            code, text = s.docmd(unknown)
            self.assertEqual(code, 421)  # third failure (auth.max_failures): disconnect
        self.assertTrue(self.f.wait_log(r"smtp\.auth_failed .*user=nobody failures=3"))

    def test_no_tls_means_no_auth(self):
        with smtplib.SMTP("127.0.0.1", self.f.port("submission"), timeout=10) as s:
            s.ehlo("app.example")
            code, text = s.docmd("AUTH PLAIN AGFsaWNlAHMzY3JldC1wdw==")
            self.assertEqual(code, 538)
            code, text = s.docmd("MAIL FROM:<a@example.com>")
            self.assertEqual(code, 530)
            self.assertIn(b"STARTTLS", text)

    def test_no_auth_on_required_listener(self):
        with smtplib.SMTP("127.0.0.1", self.f.port("submission"), timeout=10) as s:
            s.starttls(context=client_tls_context())
            s.ehlo("app.example")
            code, text = s.docmd("MAIL FROM:<a@example.com>")
            self.assertEqual((code, text), (530, b"5.7.0 Authentication required"))

    def test_trusted_network_may_relay_without_auth(self):
        with smtplib.SMTP("127.0.0.1", self.f.port("relay"), timeout=10) as s:
            s.ehlo("app.example")
            self.send_ok(s)

    def test_size_limits(self):
        with smtplib.SMTP("127.0.0.1", self.f.port("relay"), timeout=10) as s:
            s.ehlo("app.example")
            self.assertIn("size", s.esmtp_features)
            code, text = s.docmd("MAIL FROM:<a@example.com> SIZE=200000")
            self.assertEqual((code, text[:5]), (552, b"5.3.4"))
            s.docmd("MAIL FROM:<a@example.com>")
            s.docmd("RCPT TO:<b@example.org>")
            big = b"Subject: big\r\n\r\n" + (b"x" * 990 + b"\r\n") * 120
            code, text = s.data(big)
            self.assertEqual((code, text[:5]), (552, b"5.3.4"))
            # The session goes on.
            self.send_ok(s)

    def test_recipient_limit(self):
        with smtplib.SMTP("127.0.0.1", self.f.port("relay"), timeout=10) as s:
            s.ehlo("app.example")
            s.docmd("MAIL FROM:<a@example.com>")
            for i in range(3):
                self.assertEqual(s.docmd(f"RCPT TO:<r{i}@example.org>")[0], 250)
            code, text = s.docmd("RCPT TO:<r4@example.org>")
            self.assertEqual((code, text[:5]), (452, b"4.5.3"))

    def test_pipelined_replies_arrive_in_order(self):
        r = Raw(self.f.port("relay"))
        self.assertEqual(r.reply()[0], 220)
        r.send(b"EHLO app.example\r\n")
        self.assertIn("PIPELINING", r.reply()[1])
        r.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<bad>\r\n"
               b"RCPT TO:<c@example.org>\r\nDATA\r\n")
        self.assertEqual([r.reply()[0] for _ in range(5)], [250, 250, 501, 250, 354])
        r.send(MSG + b".\r\nMAIL FROM:<a@example.com>\r\nRSET\r\nNOOP\r\nQUIT\r\n")
        code, text = r.reply()
        self.assertEqual(code, 250)
        self.assertEqual([r.reply()[0] for _ in range(4)], [250, 250, 250, 221])
        self.assertTrue(r.closed())

    def test_bdat(self):
        r = Raw(self.f.port("relay"))
        r.reply()
        r.send(b"EHLO app.example\r\n")
        self.assertIn("CHUNKING", r.reply()[1])
        part1, part2 = MSG[:20], MSG[20:]
        r.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n"
               + b"BDAT %d\r\n" % len(part1) + part1 + b"BDAT %d LAST\r\n" % len(part2) + part2)
        codes = [r.reply() for _ in range(4)]
        self.assertEqual([c for c, _ in codes], [250, 250, 250, 250])
        msg_id = queued_id(codes[3][1])
        self.assertTrue(self.f.spool_body(msg_id).endswith(MSG))
        # BDAT without a transaction: the chunk is eaten, never run as commands.
        r.send(b"BDAT 18\r\nQUIT\r\nQUIT\r\nQUIT\r\nNOOP\r\n")
        self.assertEqual(r.reply()[0], 503)
        self.assertEqual(r.reply()[0], 250)

    def test_command_errors(self):
        r = Raw(self.f.port("relay"))
        r.reply()
        r.send(b"EHLO x\r\n")
        r.reply()
        r.send(b"NOOP\n")
        self.assertEqual(r.reply(), (500, "500 5.5.2 Bare LF in command; lines must end with CRLF"))
        r.send(b"X" * 600 + b"\r\n")
        self.assertEqual(r.reply()[0], 500)
        r.send(b"RCPT TO:<b@example.org>\r\n")
        self.assertEqual(r.reply()[0], 503)
        r.send(b"MAIL FROM:<a@example.com> FOO=BAR\r\n")
        self.assertEqual(r.reply()[0], 555)
        r.send(b"MAIL FROM:<j\xc3\xb6rg@example.com>\r\n")
        self.assertEqual(r.reply()[1][:9], "553 5.6.7")
        r.send(b"MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8\r\n")
        self.assertEqual(r.reply()[0], 250)
        r.close()

    def test_too_many_errors_disconnects(self):
        r = Raw(self.f.port("relay"))
        r.reply()
        r.send(b"BOGUS\r\n" * 12)
        codes = [r.reply()[0] for _ in range(10)]
        self.assertEqual(codes[:9], [500] * 9)
        self.assertEqual(codes[9], 500)
        self.assertEqual(r.reply()[0], 421)
        self.assertTrue(r.closed())


class RelayPolicy(unittest.TestCase):
    """127.0.0.1 outside trusted_networks: no relay without AUTH."""

    def test_relay_denied(self):
        f = Ferry(listeners="""
  - name: relay
    address: 127.0.0.1:0
    auth: none
  - name: submission
    address: 127.0.0.1:0
    tls: starttls
    auth: optional
""", extra="relay:\n  trusted_networks: [10.0.0.0/8]\n").start()
        try:
            for name in ("relay", "submission"):
                with smtplib.SMTP("127.0.0.1", f.port(name), timeout=10) as s:
                    s.ehlo("app.example")
                    self.assertEqual(s.docmd("MAIL FROM:<a@example.com>")[0], 250)
                    code, text = s.docmd("RCPT TO:<victim@example.org>")
                    self.assertEqual((code, text), (554, b"5.7.1 Relay access denied"))
            # auth: optional + AUTH → relaying allowed.
            with smtplib.SMTP("127.0.0.1", f.port("submission"), timeout=10) as s:
                s.starttls(context=client_tls_context())
                s.login("alice", PASSWORD)
                s.docmd("MAIL FROM:<a@example.com>")
                self.assertEqual(s.docmd("RCPT TO:<victim@example.org>")[0], 250)
            self.assertTrue(f.wait_log(r"smtp\.relay_denied"))
        finally:
            self.assertEqual(f.stop(), 0)
            f.cleanup()


class Limits(unittest.TestCase):
    def test_connection_limits_and_timeout(self):
        f = Ferry(extra="limits:\n  max_connections_per_client: 2\n"
                        "timeouts:\n  command: 1s\n").start()
        try:
            a, b = Raw(f.port("relay")), Raw(f.port("relay"))
            self.assertEqual(a.reply()[0], 220)
            self.assertEqual(b.reply()[0], 220)
            c = Raw(f.port("relay"))
            self.assertEqual(c.reply()[1][:9], "421 4.7.0")
            self.assertTrue(c.closed())
            # Idle past timeouts.command: 421 4.4.2 and the connection ends.
            self.assertEqual(a.reply()[1][:9], "421 4.4.2")
            self.assertTrue(a.closed())
        finally:
            self.assertEqual(f.stop(), 0)
            f.cleanup()


if __name__ == "__main__":
    main()
