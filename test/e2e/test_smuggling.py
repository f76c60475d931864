"""SMTP smuggling: end-of-data lookalikes inside DATA never split a message.

Each payload carries a second, smuggled transaction after a fake terminator.
A vulnerable server would answer it (two 250s) and queue a second message
from evil@attacker.example. ferryd must answer exactly once, with a 5xx,
queue nothing, and keep the session usable."""
import json
import os
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

from harness import PASSWORD, SharedFerry, Ferry, Raw, client_tls_context, main

SMUGGLED = (b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.org>\r\n"
            b"DATA\r\nSubject: smuggled\r\n\r\nforged\r\n")


class Smuggling(SharedFerry):

    def open_data(self, rcpt=b"b@example.org"):
        """A session from a@example.com to rcpt, in DATA (after the 354)."""
        r = Raw(self.f.port("relay"))
        r.reply()
        r.send(b"EHLO app.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<" + rcpt + b">\r\nDATA\r\n")
        self.assertEqual([r.reply()[0] for _ in range(4)], [250, 250, 250, 354])
        return r

    def attempt(self, fake_end):
        before = self.f.spool_ids()
        r = self.open_data()
        r.send(b"Subject: legit\r\n\r\nbody" + fake_end + SMUGGLED + b".\r\n")
        code, text = r.reply()
        self.assertEqual(code, 550, text)
        self.assertIn("5.6.0", text)
        # Exactly one reply: the next thing we hear answers our NOOP.
        r.send(b"NOOP\r\n")
        self.assertEqual(r.reply(), (250, "250 2.0.0 Ok"))
        r.close()
        self.assertEqual(self.f.spool_ids(), before)

    def test_lf_dot_lf(self):
        self.attempt(b"\n.\n")

    def test_cr_dot_lf(self):
        self.attempt(b"\r.\n")

    def test_lf_dot_crlf(self):
        self.attempt(b"\n.\r\n")

    def test_cr_dot_cr(self):
        self.attempt(b"\r.\r")

    def test_crlf_dot_lf(self):
        self.attempt(b"\r\n.\n")

    def test_bare_lf_in_body_is_refused(self):
        self.attempt(b"\nplain bare LF line\r\n")

    def test_nul_before_dot(self):
        # smtpsmug A8: no hop here reads it as the end, but the content is
        # not RFC 5322 text; refused like a bare LF, smuggled part included.
        self.attempt(b"\r\n\x00.\r\n")

    def test_nul_after_dot(self):
        self.attempt(b"\r\n.\x00\r\n")  # smtpsmug A11

    def test_nul_in_bdat_content_is_refused(self):
        before = self.f.spool_ids()
        r = Raw(self.f.port("relay"))
        r.reply()
        body = b"Subject: x\r\n\r\nnul\x00here\r\n"
        r.send(b"EHLO app.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n"
               b"BDAT %d LAST\r\n" % len(body) + body)
        self.assertEqual([r.reply()[0] for _ in range(3)], [250, 250, 250])
        code, text = r.reply()
        self.assertEqual((code, "5.6.0" in text, "NUL" in text), (550, True, True), text)
        r.close()
        self.assertEqual(self.f.spool_ids(), before)

    def test_nul_in_command_is_refused(self):
        r = Raw(self.f.port("relay"))
        r.reply()
        r.send(b"VRFY postmaster\x00@example.org\r\nNOOP\r\n")
        code, text = r.reply()
        self.assertEqual((code, "5.5.2" in text), (500, True), text)
        self.assertEqual(r.reply(), (250, "250 2.0.0 Ok"))
        r.close()

    def test_content_before_354_is_a_synchronization_error(self):
        # RFC 2920: DATA ends a pipelined group. Content sent with it, before
        # our 354, gets 554 5.5.0 and the connection ends, as with Postfix
        # >= 3.9; nothing is queued and the content is never read as commands.
        before = self.f.spool_ids()
        r = Raw(self.f.port("relay"))
        r.reply()
        r.send(b"EHLO bot.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<sync.rcpt@example.org>\r\n"
               b"DATA\r\nSubject: blind\r\n\r\nbody\r\n.\r\n" + SMUGGLED + b".\r\n")
        self.assertEqual([r.reply()[0] for _ in range(3)], [250, 250, 250])
        code, text = r.reply()
        self.assertEqual(code, 554, text)
        self.assertIn("5.5.0", text)
        self.assertIn("synchronization", text)
        self.assertTrue(r.closed())
        r.close()
        self.assertEqual(self.f.spool_ids(), before)
        self.assertTrue(self.f.wait_log(r"smtp\.pipelining_violation .*command=DATA"))
        # Authenticated clients are exempt (Postfix's rule too): a user's
        # sloppy program loses no mail, and its content goes through the
        # same strict end-of-data parser.
        s = smtplib.SMTP("127.0.0.1", self.f.port("submission"), timeout=10)
        s.starttls(context=client_tls_context())
        s.login("alice", PASSWORD)
        s.sock.sendall(b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<b@example.org>\r\n"
                       b"DATA\r\nSubject: early\r\n\r\nbody\r\n.\r\n")
        self.assertEqual([s.getreply()[0] for _ in range(4)], [250, 250, 354, 250])
        s.quit()

    def test_refusal_is_a_rejected_event(self):
        r = self.open_data(b"refused.rcpt@example.org")
        r.send(b"Subject: x\r\n\r\nMARKER-q7z\nLF\r\n.\r\n")
        self.assertEqual(r.reply()[0], 550)
        r.close()
        events = []
        for _ in range(100):  # the event is committed by the spool writer
            events = [json.loads(l) for l in
                      self.f.ctl("log", "search", "--address", "refused.rcpt@example.org", "--json")[1].splitlines()]
            if events:
                break
            time.sleep(0.05)
        self.assertEqual([(e["event"], e["from"], e["code"], e["enhanced"]) for e in events],
                         [("rejected", "a@example.com", 550, "5.6.0")])
        self.assertNotIn("MARKER-q7z", json.dumps(events))  # metadata only, never content

    def test_clean_message_still_accepted(self):
        r = self.open_data()
        r.send(b"Subject: ok\r\n\r\n..dot-stuffed line\r\n.\r\n")
        code, text = r.reply()
        self.assertEqual(code, 250)
        msg_id = text.split()[-1]
        self.assertTrue(self.f.spool_body(msg_id).endswith(b"\r\n\r\n.dot-stuffed line\r\n"))


class TlsCiphers(unittest.TestCase):
    """TLS 1.2 offers ECDHE with AEAD only (Mozilla "intermediate"): scanners
    flag static-RSA and CBC suites. Checked with openssl s_client on the
    STARTTLS and the implicit-TLS listener, with an ECDSA certificate (the
    harness default) and an RSA one."""

    def handshake(self, port, cipher, starttls):
        args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-cipher", cipher,
                "-brief"]
        if starttls:
            args += ["-starttls", "smtp"]
        out = subprocess.run(args, input="", capture_output=True, text=True, timeout=30)
        return out.returncode == 0 and "Ciphersuite: " + cipher in out.stderr, out.stderr

    def check(self, f, good, bad):
        for name, starttls in (("submission", True), ("smtps", False)):
            ok, err = self.handshake(f.port(name), good, starttls)
            self.assertTrue(ok, (name, good, err))
            for cipher in bad:
                ok, err = self.handshake(f.port(name), cipher, starttls)
                self.assertFalse(ok, (name, cipher, err))

    def test_ecdsa_certificate(self):
        f = Ferry().start()
        try:
            self.check(f, "ECDHE-ECDSA-AES128-GCM-SHA256",
                       ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"])
        finally:
            self.assertEqual(f.stop(), 0)
            f.cleanup()

    def test_rsa_certificate(self):
        d = tempfile.mkdtemp(prefix="ferry-e2e-")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", os.path.join(d, "key.pem"), "-out", os.path.join(d, "cert.pem"),
                        "-days", "2", "-subj", "/CN=relay.test"], check=True, capture_output=True)
        f = Ferry(workdir=d).start()
        try:
            self.check(f, "ECDHE-RSA-AES256-GCM-SHA384",
                       ["AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA"])
        finally:
            self.assertEqual(f.stop(), 0)
            f.cleanup()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
