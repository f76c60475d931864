"""Rate limits: the N+1th message (or recipient) in the interval gets
450 4.7.1 and goes through once the bucket refills; per user and per client
address separately; repeated AUTH failures lock the address out (421 4.7.0);
connection rate per address."""
import smtplib
import time
import unittest

from harness import PASSWORD, Ferry, Raw, client_tls_context, main


def mail(port, user=None):
    s = smtplib.SMTP("127.0.0.1", port, timeout=10)
    if user:
        s.starttls(context=client_tls_context())
        s.login(user, PASSWORD)
    else:
        s.ehlo("x")
    return s


class RateLimits(unittest.TestCase):
    def test_message_and_recipient_buckets(self):
        f = Ferry(extra="rate_limits:\n  interval: 2s\n  messages_per_client: 3\n  messages_per_user: 2\n"
                        "  recipients_per_client: 5\n").start()
        try:
            s = mail(f.port("relay"))
            for _ in range(3):
                self.assertEqual(s.docmd("MAIL FROM:<a@src.example>")[0], 250)
                s.docmd("RSET")
            code, text = s.docmd("MAIL FROM:<a@src.example>")
            self.assertEqual(code, 450)
            self.assertTrue(text.startswith(b"4.7.1 Message rate limit exceeded for your address"), text)
            time.sleep(0.8)  # 3 per 2 s: one token back after ~0.67 s
            self.assertEqual(s.docmd("MAIL FROM:<a@src.example>")[0], 250)
            codes = [s.docmd(f"RCPT TO:<r{i}@dest.example>")[0] for i in range(6)]
            self.assertEqual(codes, [250] * 5 + [450])
            s.quit()
            # An authenticated user has a budget of its own, not the address's.
            u = mail(f.port("submission"), "alice")
            self.assertEqual([u.docmd("MAIL FROM:<a@src.example>")[0] for _ in range(1)], [250])
            u.docmd("RSET")
            self.assertEqual(u.docmd("MAIL FROM:<a@src.example>")[0], 250)
            u.docmd("RSET")
            code, text = u.docmd("MAIL FROM:<a@src.example>")
            self.assertEqual(code, 450)
            self.assertIn(b"user alice", text)
            u.quit()
            self.assertEqual(f.stop(), 0)
        finally:
            f.cleanup()

    def test_auth_failures_lock_the_address_out(self):
        f = Ferry(extra="rate_limits:\n  auth_failures: 2\n  auth_lockout: 3s\n").start()
        try:
            s = mail(f.port("submission"))
            s.starttls(context=client_tls_context())
            s.ehlo("x")
            self.assertEqual(s.docmd("AUTH PLAIN AGFsaWNlAHdyb25n")[0], 535)
            self.assertEqual(s.docmd("AUTH PLAIN AGFsaWNlAHdyb25n")[0], 535)
            code, _ = s.docmd("AUTH PLAIN AGFsaWNlAHdyb25n")
            self.assertEqual(code, 421)  # locked out now
            r = Raw(f.port("relay"))  # every listener: it is the address that is locked
            code, text = r.reply()
            self.assertEqual(code, 421)
            self.assertIn("4.7.0 relay.test Too many authentication failures", text)
            time.sleep(3.2)
            r = Raw(f.port("relay"))
            self.assertEqual(r.reply()[0], 220)
            self.assertEqual(f.stop(), 0)
        finally:
            f.cleanup()

    def test_connection_rate(self):
        f = Ferry(extra="rate_limits:\n  connections_per_minute: 3\n").start()
        try:
            codes = []
            for _ in range(4):
                r = Raw(f.port("relay"))
                codes.append(r.reply()[0])
                r.close()
            self.assertEqual(codes, [220, 220, 220, 421])
            self.assertEqual(f.stop(), 0)
        finally:
            f.cleanup()


if __name__ == "__main__":
    main()
