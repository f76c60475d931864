"""Privacy promises, checked on disk: with encryption at rest, neither a
body marker nor a recipient address appears in plaintext anywhere under
the spool directory, even while queued; bodies are gone after delivery;
delivery-log events expire after delivery_log.retention; a tampered record
is quarantined while the rest is delivered."""
import os
import subprocess
import time
import unittest

from harness import Ferry, Receivers, main

RX = "127.0.0.10"
MARKER = b"MARKER-c0ffee-5e3b1"
PERSON = "jane.private.person@example.org"


def files_contain(directory, needle):
    for root, _, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                if needle in f.read():
                    return os.path.join(root, name)
    return None


def submit(f, rcpt, body):
    import smtplib
    with smtplib.SMTP("127.0.0.1", f.port("relay"), timeout=10) as s:
        s.ehlo("app.example")
        s.docmd("MAIL FROM:<app@src.example>")
        s.docmd(f"RCPT TO:<{rcpt}>")
        code, text = s.data(body)
        assert code == 250, text
        return text.decode().split()[-1]


def key(f, name="spool.key"):
    path = os.path.join(f.dir, name)
    with open(path, "w") as k:
        k.write(os.urandom(32).hex() + "\n")
    return path


def encrypt(f):
    """Gives f a fresh key and turns on spool.encryption_key_file."""
    key(f)
    with open(f.config_path) as c:
        text = c.read().replace("  max_size: 64MiB\n", "  max_size: 64MiB\n  encryption_key_file: spool.key\n")
    with open(f.config_path, "w") as c:
        c.write(text)


class Privacy(unittest.TestCase):
    def test_encrypted_spool_has_no_plaintext_while_queued(self):
        f = Ferry()
        try:
            encrypt(f)
            f.start()
            msg_id = submit(f, PERSON, b"Subject: private\r\n\r\n" + MARKER + b"\r\n")
            f.wait_log(r"deferred .*rcpt=" + PERSON)  # queued, and a delivery attempt has rewritten it
            self.assertIn(msg_id, f.spool_ids())
            for needle in (MARKER, PERSON.encode(), b"jane.private"):
                self.assertIsNone(files_contain(f.spool, needle), needle)
            dump = subprocess.run(["mdb_dump", "-a", "-p", f.spool], capture_output=True).stdout
            self.assertNotIn(MARKER, dump)
            self.assertNotIn(PERSON.encode(), dump)
            # And yet ferryctl can read it all back with the key.
            rc, out, _ = f.ctl("queue", "show", msg_id)
            self.assertIn(PERSON, out)
            rc, out, _ = f.ctl("log", "search", "--address", PERSON, "--json")
            self.assertIn('"event":"received"', out)
            self.assertEqual(f.stop(), 0)
        finally:
            f.cleanup()

    def test_body_gone_after_delivery_and_never_logged(self):
        rx = Receivers([RX])
        f = Ferry(extra="delivery:\n  routes:\n    - { domain: \"*\", host: \"%s:%d\" }\n" % (RX, rx.port))
        try:
            f.start()
            msg_id = submit(f, PERSON, b"Subject: gone\r\n\r\n" + MARKER + b"\r\n")
            rx.wait_count(RX, 1)
            self.assertTrue(f.wait_log(r"delivered id=" + msg_id))
            deadline = time.time() + 10
            while time.time() < deadline and msg_id in f.spool_ids():
                time.sleep(0.05)
            dump = subprocess.run(["mdb_dump", "-a", "-p", f.spool], capture_output=True).stdout
            self.assertNotIn(MARKER, dump)  # no live record holds the body
            self.assertNotIn(MARKER.decode(), f.log())
            self.assertEqual(set(os.listdir(f.spool)), {"data.mdb", "lock.mdb"})  # no temp files
            self.assertEqual(f.stop(), 0)
        finally:
            f.cleanup()
            rx.stop()

    def test_retention_purges_events(self):
        f = Ferry(extra="delivery_log:\n  retention: 2s\n").start()
        try:
            submit(f, PERSON, b"Subject: short-lived\r\n\r\nx\r\n")
            rc, out, _ = f.ctl("log", "search", "--address", PERSON, "--json")
            self.assertIn("received", out)
            deadline = time.time() + 20
            while time.time() < deadline:
                rc, out, _ = f.ctl("log", "search", "--address", PERSON, "--json")
                if out == "":
                    break
                time.sleep(0.2)
            self.assertEqual(out, "")
            self.assertTrue(f.wait_log(r"delivery_log.purged events=\d+"))
            self.assertEqual(f.stop(), 0)
        finally:
            f.cleanup()

    def test_tampered_record_is_quarantined_rest_delivered(self):
        rx = Receivers([RX])
        f = Ferry()
        try:
            encrypt(f)
            f.start()
            good = submit(f, "good@dest.example", b"Subject: good\r\n\r\nx\r\n")
            bad = submit(f, "bad@dest.example", b"Subject: bad\r\n\r\nx\r\n")
            f.wait_log(r"deferred .*rcpt=bad@dest.example")
            self.assertEqual(f.stop(), 0)
            # Flip one bit of the sealed body of `bad`, with LMDB's own tools.
            out = subprocess.run(["mdb_dump", "-s", "body", f.spool], capture_output=True, check=True).stdout.decode()
            lines = out.split("\n")
            i = lines.index(" " + bad.encode().hex()) + 1
            v = bytearray(bytes.fromhex(lines[i][1:]))
            v[len(v) // 2] ^= 1
            lines[i] = " " + v.hex()
            subprocess.run(["mdb_load", "-s", "body", "-f", "/dev/stdin", f.spool], input="\n".join(lines).encode(),
                           check=True)
            with open(f.config_path) as c:
                text = c.read()
            text = text[:text.index("delivery:")] + "delivery:\n  routes:\n    - { domain: \"*\", host: \"%s:%d\" }\n" % (RX, rx.port)
            open(f.config_path, "w").write(text)
            f.start()
            f.ctl("queue", "flush")
            got = rx.wait_count(RX, 1)
            self.assertTrue(f.wait_log(r"error spool.quarantined id=" + bad + r" error=.*failed authentication"))
            self.assertTrue(f.wait_log(r"delivered id=" + good))
            time.sleep(0.5)
            self.assertEqual(len(rx.messages(RX)), 1)
            self.assertIn("RCPT TO good@dest.example", got[0][0])
            self.assertNotIn(bad, f.spool_ids())
            self.assertIn(b"body:" + bad.encode(), f.spool_dump("quarantine"))
            self.assertEqual(f.stop(), 0)
        finally:
            f.cleanup()
            rx.stop()


if __name__ == "__main__":
    main()
