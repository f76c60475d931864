"""A damaged spool is refused, never run on: ferryd exits 1 with a line
naming data.mdb and what to do (no signal, no hang, never an empty start),
and `ferryctl spool check` says what is wrong; a body whose bytes were
flipped on disk is quarantined and never delivered.

    smtplib --> ferryd (mail held: routed to a closed port) --> stop
            --> damage spool/data.mdb --> ferryd / ferryctl spool check
    (flipped body) ferryd --> aiosmtpd receiver: only the intact messages
"""
import os
import random
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

from harness import FERRYCTL, Ferry, Receivers, main

RX = "127.0.0.11"
PAGE = 4096
N = 12


def submit(f, i):
    lines = 40 if i % 2 else 1  # odd: ~3 KB, in LMDB overflow pages; even: inline
    body = (f"Subject: held {i}\r\n\r\nBODY-MARK-{1000 + i}\r\n").encode() + (b"y" * 76 + b"\r\n") * lines
    with smtplib.SMTP("127.0.0.1", f.port("relay"), timeout=10) as s:
        s.ehlo("app.example")
        s.docmd("MAIL FROM:<app@src.example>")
        s.docmd(f"RCPT TO:<rcpt{i}@dest.example>")
        code, text = s.data(body)
        assert code == 250, text
        return text.decode().split()[-1]


def spool_check(f, *args):
    out = subprocess.run([FERRYCTL, "-c", f.config_path, "spool", "check", *args], capture_output=True,
                         text=True, timeout=120)
    return out.returncode, out.stdout + out.stderr


def compact(spool):
    """Rewrites data.mdb without free pages (mdb_copy -c), so that damage
    anywhere in the file hits pages in use."""
    tmp = tempfile.mkdtemp(prefix="ferry-compact-")
    try:
        subprocess.run(["mdb_copy", "-c", spool, tmp], check=True)
        shutil.move(os.path.join(tmp, "data.mdb"), os.path.join(spool, "data.mdb"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def zero_length(data):
    return b""


def truncated_half(data):
    return data[:len(data) // 2 // PAGE * PAGE]


def one_page(data):
    return data[:PAGE]


def random_middle(data):
    rng = random.Random(7)
    at = max(2 * PAGE, len(data) // 2 // PAGE * PAGE - 8 * PAGE)
    junk = bytes(rng.getrandbits(8) for _ in range(64 * 1024))
    out = bytearray(data)
    out[at:at + len(junk)] = junk[:max(0, len(out) - at)]
    return bytes(out)


def page_headers(data):
    out = bytearray(data)
    for pg in range(2, len(out) // PAGE):
        out[pg * PAGE:pg * PAGE + 16] = b"\xa5" * 16
    return bytes(out)


class DamagedSpool(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        """One spool with N held messages, built by its own ferryd and kept
        as a pristine copy; each scenario damages a copy of it."""
        f = Ferry()
        try:
            f.start()
            cls.ids = [submit(f, i) for i in range(N)]
            assert f.stop() == 0
            compact(f.spool)
            cls.pristine = tempfile.mkdtemp(prefix="ferry-pristine-")
            shutil.copy(os.path.join(f.spool, "data.mdb"), cls.pristine)
        finally:
            f.cleanup()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pristine, ignore_errors=True)

    def fresh(self, extra=""):
        f = Ferry(extra=extra)
        os.makedirs(f.spool, mode=0o700)
        shutil.copy(os.path.join(self.pristine, "data.mdb"), f.spool)
        return f

    def refused(self, damage):
        f = self.fresh()
        try:
            path = os.path.join(f.spool, "data.mdb")
            with open(path, "rb") as fh:
                data = damage(fh.read())
            with open(path, "wb") as fh:
                fh.write(data)
            f.start(expect_ready=False)
            try:
                rc = f.proc.wait(90)  # the check is bounded (30 s + size); never a hang
            except subprocess.TimeoutExpired:
                f.kill()
                self.fail("ferryd hung on a damaged spool:\n" + f.log())
            f._reader.join(5)
            log = f.log()
            self.assertEqual(rc, 1, log)  # an exit status, not a signal
            self.assertIn("ferryd.spool_damaged", log)
            self.assertIn(path, log)
            self.assertIn("ferryctl spool check", log)
            self.assertNotIn("ferryd.ready", log)
            self.assertNotIn("Sanitizer", log)
            with open(path, "rb") as fh:
                self.assertEqual(fh.read(), data, "the damaged file was changed")
            code, out = spool_check(f)
            self.assertEqual(code, 1, out)
            self.assertIn("damaged: " + path, out)
            return log
        finally:
            f.cleanup()

    def test_zero_length_is_refused_not_started_empty(self):
        self.assertIn("empty", self.refused(zero_length))

    def test_truncated_is_refused(self):
        self.assertIn("truncated", self.refused(truncated_half))
        self.assertIn("truncated", self.refused(one_page))

    def test_random_bytes_in_the_middle_are_refused(self):
        self.refused(random_middle)

    def test_corrupted_page_headers_are_refused(self):
        self.refused(page_headers)

    def test_sound_spool_checks_ok_with_and_without_a_running_daemon(self):
        f = self.fresh()
        try:
            code, out = spool_check(f, "--bodies")
            self.assertEqual(code, 0, out)
            self.assertIn(f"ok: {f.spool}/data.mdb: {N} messages", out)
            f.start()
            code, out = spool_check(f, "--json")
            self.assertEqual(code, 0, out)
            self.assertIn('"ok":true', out)
            self.assertEqual(f.stop(), 0)
        finally:
            f.cleanup()

    def test_flipped_body_byte_is_quarantined_never_delivered(self):
        rx = Receivers([RX])
        f = self.fresh(extra="delivery:\n  routes:\n    - { domain: \"*\", host: \"%s:%d\" }\n" % (RX, rx.port))
        try:
            bad = self.ids[3]  # an overflow-page body
            path = os.path.join(f.spool, "data.mdb")
            with open(path, "rb") as fh:
                data = bytearray(fh.read())
            at = data.index(b"BODY-MARK-1003")
            data[at + 2] ^= 0x01
            with open(path, "wb") as fh:
                fh.write(data)
            code, out = spool_check(f, "--bodies")
            self.assertEqual(code, 1, out)
            self.assertIn(bad, out)
            self.assertIn("checksum", out)
            f.start()
            f.ctl("queue", "flush")
            got = rx.wait_count(RX, N - 1)
            self.assertTrue(f.wait_log(r"error spool.quarantined id=" + bad + r" error=.*checksum"), f.log())
            time.sleep(0.5)
            self.assertEqual(len(rx.messages(RX)), N - 1)
            for env, raw in got:
                self.assertNotIn(b"BOEY-MARK-1003", raw)  # the flipped bytes never leave
                self.assertNotIn("rcpt3@dest.example", " ".join(env))
            self.assertNotIn(bad, f.spool_ids())
            self.assertIn(b"body:" + bad.encode(), f.spool_dump("quarantine"))
            self.assertEqual(f.stop(), 0)
        finally:
            f.cleanup()
            rx.stop()


if __name__ == "__main__":
    main()
