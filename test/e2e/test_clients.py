"""Real client programs: swaks (Perl Net::SSLeay) and curl (libcurl), over
STARTTLS and implicit TLS, with AUTH PLAIN and LOGIN."""
import os
import re
import subprocess
import tempfile
import unittest

from harness import SharedFerry, PASSWORD, Ferry, main


class Clients(SharedFerry):

    def swaks(self, *args):
        out = subprocess.run(["swaks", "--server", "127.0.0.1", "--from", "app@example.com",
                              "--to", "user@example.org", "--timeout", "10", *args],
                             capture_output=True, text=True, timeout=60)
        return out.returncode, out.stdout + out.stderr

    def test_swaks_starttls_plain(self):
        rc, out = self.swaks("--port", str(self.f.port("submission")), "--tls", "--auth", "PLAIN",
                             "--auth-user", "alice", "--auth-password", PASSWORD)
        self.assertEqual(rc, 0, out)
        msg_id = re.search(r"queued as (\w+)", out).group(1)
        self.assertIn(msg_id, self.f.spool_ids())

    def test_swaks_implicit_tls_login(self):
        rc, out = self.swaks("--port", str(self.f.port("smtps")), "--tlsc", "--auth", "LOGIN",
                             "--auth-user", "bob", "--auth-password", PASSWORD)
        self.assertEqual(rc, 0, out)
        self.assertIn("235 2.7.0", out)

    def test_swaks_wrong_password(self):
        rc, out = self.swaks("--port", str(self.f.port("submission")), "--tls", "--auth", "PLAIN",
                             "--auth-user", "alice", "--auth-password", "nope")
        self.assertNotEqual(rc, 0)
        self.assertIn("535 5.7.8", out)

    def test_swaks_pipelining(self):
        rc, out = self.swaks("--port", str(self.f.port("relay")), "--pipeline")
        self.assertEqual(rc, 0, out)

    def curl(self, url, *args):
        with tempfile.NamedTemporaryFile("wb", delete=False) as msg:
            msg.write(b"From: app@example.com\r\nTo: user@example.org\r\nSubject: curl\r\n\r\nhi\r\n")
        try:
            out = subprocess.run(["curl", "--silent", "--show-error", "--insecure", "-v",
                                  "--mail-from", "app@example.com", "--mail-rcpt", "user@example.org",
                                  "--upload-file", msg.name, url, *args],
                                 capture_output=True, text=True, timeout=60)
        finally:
            os.unlink(msg.name)
        return out.returncode, out.stderr

    def test_curl_ssl_reqd_starttls(self):
        rc, err = self.curl(f"smtp://127.0.0.1:{self.f.port('submission')}", "--ssl-reqd",
                            "--user", f"alice:{PASSWORD}")
        self.assertEqual(rc, 0, err)
        self.assertIn("queued as", err)

    def test_curl_implicit_tls(self):
        rc, err = self.curl(f"smtps://127.0.0.1:{self.f.port('smtps')}", "--user", f"bob:{PASSWORD}",
                            "--login-options", "AUTH=LOGIN")
        self.assertEqual(rc, 0, err)
        self.assertIn("queued as", err)

    def test_curl_without_auth_is_refused(self):
        rc, err = self.curl(f"smtp://127.0.0.1:{self.f.port('submission')}", "--ssl-reqd")
        self.assertNotEqual(rc, 0)
        self.assertIn("530", err)


if __name__ == "__main__":
    main()
