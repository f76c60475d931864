"""The ferryd and ferryctl command lines: --version, --check-config with
FILE:LINE:COL errors, bad configs refused at start, SIGTERM exits 0,
ferryctl passwd."""
import os
import re
import subprocess
import tempfile
import unittest

from harness import FERRYCTL, FERRYD, Ferry, Raw, main, make_cert

SOURCE = os.environ.get("FERRY_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))


def check(path):
    out = subprocess.run([FERRYD, "--check-config", "-c", path], capture_output=True, text=True)
    return out.returncode, out.stdout + out.stderr


class Cli(unittest.TestCase):
    def test_version(self):
        out = subprocess.run([FERRYD, "--version"], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0)
        self.assertRegex(out.stdout, r"^ferryd \d+\.\d+\.\d+")

    def test_default_config_is_valid(self):
        # conf/ferry.yaml needs its certificate and users file; the run
        # script makes them, here a copy in a temp dir gets its own.
        with tempfile.TemporaryDirectory() as d:
            text = open(os.path.join(SOURCE, "conf", "ferry.yaml")).read()
            os.makedirs(os.path.join(d, "conf"))
            os.makedirs(os.path.join(d, "build", "run"))
            # --check-config reads them too (a real certificate; an empty
            # users file is valid: nobody can log in yet).
            make_cert(os.path.join(d, "build", "run"))
            open(os.path.join(d, "build", "run", "users.yaml"), "w").close()
            path = os.path.join(d, "conf", "ferry.yaml")
            open(path, "w").write(text)
            rc, out = check(path)
            self.assertEqual(rc, 0, out)

    def test_check_config_errors(self):
        cases = [
            ("listeners:\n  - name: a\n    address: 127.0.0.1:99999\n", r":3:14: '127\.0\.0\.1:99999' is not a valid address"),
            ("listeners:\n  - name: a\n    address: 127.0.0.1:25\nlimit:\n  x: 1\n", r":4:1: unknown key 'limit' \(did you mean 'limits'"),
            ("listeners:\n  - name: a\n    address: 127.0.0.1:25\n    tls: implicit\ntls:\n  certificate: /no/such.pem\n  key: /no/such.pem\n",
             r":6:3: tls.certificate: cannot read '/no/such.pem'"),
            ("listeners: {\n", r":\d+:\d+: "),
        ]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.yaml")
            for text, pattern in cases:
                open(path, "w").write(text)
                rc, out = check(path)
                self.assertEqual(rc, 1, out)
                self.assertRegex(out, "^" + re.escape(path) + pattern)
                # ferryd itself refuses to start with the same message.
                run = subprocess.run([FERRYD, "-c", path], capture_output=True, text=True, timeout=10)
                self.assertEqual(run.returncode, 1)
                self.assertIn(path + ":", run.stderr)
            rc, out = check(os.path.join(d, "missing.yaml"))
            self.assertEqual(rc, 1)
            self.assertIn("missing.yaml:1:1: cannot open", out)

    def test_bad_encryption_key_is_refused(self):
        f = Ferry()
        try:
            open(os.path.join(f.dir, "key.bin"), "w").write("too short\n")
            with open(f.config_path) as c:
                text = c.read().replace("  max_size: 64MiB\n", "  max_size: 64MiB\n  encryption_key_file: key.bin\n")
            open(f.config_path, "w").write(text)
            run = subprocess.run([FERRYD, "-c", f.config_path], capture_output=True, text=True, timeout=10)
            self.assertEqual(run.returncode, 1)
            self.assertIn("needs 32 bytes or 64 hex digits", run.stderr)
        finally:
            f.cleanup()

    def test_sigterm_exits_0_and_closes_idle_sessions(self):
        f = Ferry().start()
        try:
            r = Raw(f.port("relay"))
            r.reply()
            self.assertEqual(f.stop(), 0)
            self.assertEqual(r.reply()[1][:9], "421 4.3.2")
            self.assertIn("ferryd.stopped", f.log())
        finally:
            f.cleanup()

    def test_passwd(self):
        out = subprocess.run([FERRYCTL, "passwd"], input="hunter2\n", capture_output=True, text=True)
        self.assertEqual(out.returncode, 0)
        self.assertRegex(out.stdout, r"^\$argon2id\$v=19\$m=19456,t=2,p=1\$\S+\n$")
        empty = subprocess.run([FERRYCTL, "passwd"], input="\n", capture_output=True, text=True)
        self.assertEqual(empty.returncode, 1)
        bad = subprocess.run([FERRYCTL, "frobnicate"], capture_output=True, text=True)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("unknown command", bad.stderr)


if __name__ == "__main__":
    main()
