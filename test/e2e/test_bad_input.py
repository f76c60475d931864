"""Bad input never crashes ferryd.

    raw socket --bad JSON--> control.sock --> ferryd --> {"ok": false, "error": ...}
                                                  \\--> still serving SMTP

Control requests with wrong types, unknown commands or no newline get a
JSON error (nlohmann's value() used to throw type_error and abort the
daemon); delivery_log.file lines whose fields have the wrong type are kept
by privacy erase (they aborted it inside uv_queue_work); auth.users_file
pointing at a directory is refused at --check-config, at start and at
SIGHUP (it used to pass the check, then abort with std::ios_base::failure).
Each scenario starts its own daemons."""
import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import unittest

from harness import FERRYD, PASSWORD, Ferry, Raw, client_tls_context, main


def control(path, data, shut=False):
    """Sends raw bytes on the control socket; returns the parsed answer."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while len(out) < 1 << 20:  # bounded: one answer line
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return json.loads(out)


def smtp_alive(f):
    r = Raw(f.port("relay"))
    try:
        return r.reply()[0] == 220
    finally:
        r.close()


def login_ok(f, user="alice", password=PASSWORD):
    with smtplib.SMTP("127.0.0.1", f.port("submission"), timeout=10) as s:
        s.ehlo("app.example")
        s.starttls(context=client_tls_context())
        s.ehlo("app.example")
        try:
            s.login(user, password, initial_response_ok=True)
            return True
        except smtplib.SMTPAuthenticationError:
            return False


BAD_REQUESTS = [
    (b"not json\n", r"not valid JSON"),
    (b"[1, 2]\n", r"must be a JSON object, not an array"),
    (b"\"status\"\n", r"must be a JSON object, not a string"),
    (b"{}\n", r"needs \"cmd\""),
    (b'{"cmd": 5}\n', r"'cmd' must be a string, not an integer"),
    (b'{"cmd": null}\n', r"'cmd' must be a string, not null"),
    (b'{"cmd": "frobnicate"}\n', r"unknown command: frobnicate"),
    (b'{"cmd": "status", "args": []}\n', r"'args' must be an object, not an array"),
    (b'{"cmd": "queue.show"}\n', r"queue.show needs argument 'id'"),
    (b'{"cmd": "queue.show", "args": {"id": 7}}\n', r"argument 'id' must be a string"),
    (b'{"cmd": "queue.flush", "args": {"domain": ["x"]}}\n', r"argument 'domain' must be a string"),
    (b'{"cmd": "suppress.add", "args": {"address": 7}}\n', r"argument 'address' must be a string"),
    (b'{"cmd": "suppress.add", "args": {"address": "a@b.example", "reason": {}}}\n',
     r"argument 'reason' must be a string"),
    (b'{"cmd": "privacy.export", "args": {"address": 7}}\n', r"argument 'address' must be a string"),
    (b'{"cmd": "privacy.erase", "args": {"address": "a@b.example", "keep_suppression": "yes"}}\n',
     r"argument 'keep_suppression' must be true or false"),
    (b'{"cmd": "log.search", "args": {"address": "a@b.example", "since_ms": "yesterday"}}\n',
     r"argument 'since_ms' must be an integer"),
    (b'{"cmd": "log.search", "args": {"address": "a@b.example", "since_ms": 1.5}}\n',
     r"argument 'since_ms' must be an integer"),
    (b'{"cmd": "log.search", "args": {"address": "a@b.example", "since_ms": 18446744073709551615}}\n',
     r"'since_ms' is too large"),
    (b'{"cmd": "privacy.erase", "args": {"adress": "a@b.example"}}\n', r"unknown argument 'adress'"),
    (b'{"cmd": "status"' + b' ' * 70000 + b'}\n', r"request too large"),
    (b'{"cmd": "status", "x": "' + b"a" * 70000, r"request too large"),  # no newline at all
]


class ControlRequests(unittest.TestCase):
    def setUp(self):
        self.f = Ferry().start()

    def tearDown(self):
        rc = self.f.stop()
        self.f.cleanup()
        self.assertEqual(rc, 0)

    def test_each_bad_request_gets_a_json_error_and_ferryd_lives(self):
        for data, pattern in BAD_REQUESTS:
            with self.subTest(request=data[:80]):
                answer = control(self.f.socket, data)
                self.assertIs(answer["ok"], False, answer)
                self.assertRegex(answer["error"], pattern)
                self.assertIsNone(self.f.proc.poll(), "ferryd died:\n" + self.f.log())
        self.assertTrue(smtp_alive(self.f))
        rc, out, err = self.f.ctl("status")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("control.internal_error", self.f.log())

    def test_request_without_newline_is_answered_at_end_of_input(self):
        answer = control(self.f.socket, b'{"cmd": "status"}', shut=True)
        self.assertIs(answer["ok"], True, answer)
        self.assertIn("version", answer["result"])

    def test_well_typed_requests_still_work(self):
        answer = control(self.f.socket, b'{"cmd": "suppress.add", "args": {"address": "X@B.example"}}\n')
        self.assertEqual(answer, {"ok": True, "result": {"address": "x@b.example"}})
        answer = control(self.f.socket,
                         b'{"cmd": "log.search", "args": {"address": "x@b.example", "since_ms": 0}}\n')
        self.assertEqual(answer, {"ok": True, "result": []})


class EventFileLines(unittest.TestCase):
    """privacy erase reads delivery_log.file, which anyone who can write
    there may have edited: fields of the wrong type are not the address."""

    def test_erase_keeps_lines_it_cannot_read_as_events(self):
        f = Ferry(extra="delivery_log:\n  file: events.jsonl\n")
        path = os.path.join(f.dir, "events.jsonl")
        odd = ['{"event": "delivered", "rcpt": 7, "from": ["x"]}', '{"rcpt": null, "from": {"a": 1}}',
               '[1, 2]', '"just a string"', '12', 'not json at all', '{"rcpt": "other@b.example", "from": 5}']
        mine = '{"event": "delivered", "rcpt": "gone@b.example", "from": "app@a.example"}'
        with open(path, "w") as fh:
            fh.write("\n".join(odd + [mine]) + "\n")
        f.start()
        try:
            rc, out, err = f.ctl("privacy", "erase", "--address", "gone@b.example")
            self.assertEqual(rc, 0, err + f.log())
            self.assertEqual(json.loads(out)["file_lines_deleted"], 1)
            with open(path) as fh:
                self.assertEqual(fh.read().splitlines(), odd)
            self.assertTrue(smtp_alive(f))
            self.assertEqual(f.stop(), 0)
        finally:
            f.cleanup()


class UsersFileDirectory(unittest.TestCase):
    def set_users_file(self, f, users_file):
        with open(f.config_path) as c:
            text = c.read().replace("  users_file: users.yaml\n", f"  users_file: {users_file}\n")
        with open(f.config_path, "w") as c:
            c.write(text)

    def users_line(self, f):
        with open(f.config_path) as c:
            for n, line in enumerate(c, 1):
                if "users_file:" in line:
                    return n

    def test_check_config_and_start_refuse_it(self):
        f = Ferry()
        try:
            os.mkdir(os.path.join(f.dir, "users.d"))
            self.set_users_file(f, "users.d")
            out = subprocess.run([FERRYD, "--check-config", "-c", f.config_path], capture_output=True,
                                 text=True, timeout=30)
            self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
            self.assertRegex(out.stderr, "^" + re.escape(f.config_path) + ":%d:3: auth.users_file: '.*users.d' "
                             "is a directory" % self.users_line(f))
            run = subprocess.run([FERRYD, "-c", f.config_path], capture_output=True, text=True, timeout=30)
            self.assertEqual(run.returncode, 1, run.stderr)  # not -SIGABRT
            self.assertIn("is a directory", run.stderr)
            self.assertNotIn("terminate called", run.stderr)
        finally:
            f.cleanup()

    def test_check_config_reads_the_users_file(self):
        f = Ferry(users={"alice": "$6$"})  # truncated: it used to pass --check-config
        try:
            out = subprocess.run([FERRYD, "--check-config", "-c", f.config_path], capture_output=True,
                                 text=True, timeout=30)
            self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
            self.assertRegex(out.stderr, re.escape(os.path.join(f.dir, "users.yaml")) +
                             r":1:8: unsupported or weak hash for 'alice'")
        finally:
            f.cleanup()

    def test_check_config_reads_the_other_named_files(self):
        """Empty or garbage files that start-up refuses: --check-config
        used to say ok; now it names the key's line, as start does."""
        cases = [
            ("cert.pem", "", "tls:\n  certificate: cert.pem\n", r":\d+:3: tls\.certificate "),
            ("key.pem", "garbage\n", "tls:\n  certificate: cert.pem\n  key: key.pem\n", r":\d+:3: tls\.key "),
            ("spool.key", "not a key\n", "  encryption_key_file: spool.key\n", r":\d+:3: key file .*spool\.key"),
            ("route.pw", "", "      password_file: route.pw\n", r":\d+:7: cannot read .*route\.pw"),
        ]
        for name, content, where, pattern in cases:
            with self.subTest(file=name):
                f = Ferry()
                try:
                    with open(os.path.join(f.dir, name), "w") as fh:
                        fh.write(content)
                    with open(f.config_path) as c:
                        text = c.read()
                    if name == "spool.key":
                        text = text.replace("  max_size: 64MiB\n", "  max_size: 64MiB\n" + where)
                    if name == "route.pw":
                        text = text.replace("  routes:\n    - { domain: \"*\", host: \"127.0.0.1:%d\" }\n" % f.hold_port,
                                            "  routes:\n    - domain: \"*\"\n      host: \"127.0.0.1:%d\"\n"
                                            "      username: u\n" % f.hold_port + where)
                    with open(f.config_path, "w") as c:
                        c.write(text)
                    out = subprocess.run([FERRYD, "--check-config", "-c", f.config_path], capture_output=True,
                                         text=True, timeout=30)
                    self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
                    self.assertRegex(out.stderr, "^" + re.escape(f.config_path) + pattern)
                    line = int(out.stderr.split(":")[1])
                    with open(f.config_path) as c:
                        self.assertIn(where.splitlines()[-1].strip(), c.read().splitlines()[line - 1])
                finally:
                    f.cleanup()

    def test_sighup_keeps_the_old_users(self):
        f = Ferry().start()
        try:
            self.assertTrue(login_ok(f))
            os.mkdir(os.path.join(f.dir, "users.d"))
            self.set_users_file(f, "users.d")
            f.proc.send_signal(signal.SIGHUP)
            self.assertTrue(f.wait_log(r"reload\.failed.*is a directory"), f.log())
            self.assertIsNone(f.proc.poll(), "ferryd died:\n" + f.log())
            self.assertTrue(login_ok(f))  # the old users file still answers
            self.assertFalse(login_ok(f, password="wrong"))
            self.assertEqual(f.stop(), 0)
        finally:
            f.cleanup()


if __name__ == "__main__":
    main()
