"""Drives the real ferryd binary for end-to-end tests.

Each Ferry instance gets its own temporary directory (config, throw-away
certificate, users file, spool), listens on kernel-chosen loopback ports
(read back from ferryd's `listener.bound` log lines) and is stopped with
SIGTERM, whose exit status is checked. Nothing here touches the network
beyond 127.0.0.1.
"""
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

FERRYD = os.environ.get("FERRYD", "build/daemon/ferryd")
FERRYCTL = os.environ.get("FERRYCTL", "build/daemon/ferryctl")
PASSWORD = "s3cret-pw"

_hash_cache = {}


def make_hash(password=PASSWORD):
    if password not in _hash_cache:
        out = subprocess.run([FERRYCTL, "passwd"], input=password + "\n", capture_output=True,
                             text=True, check=True)
        _hash_cache[password] = out.stdout.strip()
    return _hash_cache[password]


def make_cert(directory):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                    os.path.join(directory, "key.pem"), "-out", os.path.join(directory, "cert.pem"),
                    "-days", "2", "-subj", "/CN=relay.test"],
                   check=True, capture_output=True)


DEFAULT_LISTENERS = """
  - name: submission
    address: 127.0.0.1:0
    tls: starttls
    auth: required
  - name: smtps
    address: 127.0.0.1:0
    tls: implicit
    auth: required
  - name: relay
    address: 127.0.0.1:0
    tls: none
    auth: none
"""


class Ferry:
    def __init__(self, extra="", listeners=DEFAULT_LISTENERS, users=None, workdir=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="ferry-e2e-")
        self.owns_dir = workdir is None
        self.proc = None
        self.log_lines = []
        self.ports = {}
        if not os.path.exists(os.path.join(self.dir, "cert.pem")):
            make_cert(self.dir)
        users = users if users is not None else {"alice": make_hash(), "bob": make_hash()}
        with open(os.path.join(self.dir, "users.yaml"), "w") as f:
            for name, h in users.items():
                f.write(f"{name}: '{h}'\n")
        self.config_path = os.path.join(self.dir, "ferry.yaml")
        self.write_config(listeners, extra)

    def write_config(self, listeners=DEFAULT_LISTENERS, extra=""):
        with open(self.config_path, "w") as f:
            f.write("server:\n  hostname: relay.test\n  shutdown_timeout: 5s\n")
            f.write("listeners:" + listeners + "\n")
            f.write("tls:\n  certificate: cert.pem\n  key: key.pem\n")
            f.write("auth:\n  users_file: users.yaml\n  failure_delay: 50ms\n")
            f.write("spool:\n  path: spool\n  max_size: 64MiB\n")
            f.write(extra)

    @property
    def spool(self):
        return os.path.join(self.dir, "spool")

    def start(self, expect_ready=True):
        self.log_lines = []
        self.ports = {}
        self.proc = subprocess.Popen([FERRYD, "-c", self.config_path], stderr=subprocess.PIPE,
                                     text=True, errors="replace")
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        if expect_ready:
            if not self._ready.wait(15):
                self.kill()
                raise RuntimeError("ferryd did not become ready:\n" + self.log())
        return self

    def _read_log(self):
        for line in self.proc.stderr:
            self.log_lines.append(line)
            m = re.search(r"listener\.bound name=(\S+) address=127\.0\.0\.1:(\d+)", line)
            if m:
                self.ports[m.group(1)] = int(m.group(2))
            if "ferryd.ready" in line:
                self._ready.set()

    def log(self):
        return "".join(self.log_lines)

    def wait_log(self, pattern, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if re.search(pattern, self.log()):
                return True
            time.sleep(0.02)
        return False

    def port(self, name):
        return self.ports[name]

    def stop(self, timeout=15):
        """SIGTERM; returns the exit status."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._reader.join(5)
        self.proc.stderr.close()
        self.proc = None
        return rc

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self._reader.join(5)
            self.proc.stderr.close()
            self.proc = None

    def cleanup(self):
        self.kill()
        if self.owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- spool inspection with lmdb-utils, as an admin would -------------
    def spool_dump(self, db):
        """{key: value} of one named database, via mdb_dump -p."""
        out = subprocess.run(["mdb_dump", "-p", "-s", db, self.spool], capture_output=True,
                             check=True).stdout
        lines = out.split(b"\n")
        i = lines.index(b"HEADER=END") + 1
        result = {}
        while i + 1 < len(lines) and lines[i].startswith(b" "):
            result[_unprint(lines[i][1:])] = _unprint(lines[i + 1][1:])
            i += 2
        return result

    def spool_ids(self):
        return {k.decode() for k in self.spool_dump("msg")}

    def spool_body(self, msg_id):
        return self.spool_dump("body").get(msg_id.encode())


def _unprint(b):
    """Undoes mdb_dump -p escaping (\\\\ and \\hh)."""
    out = bytearray()
    i = 0
    while i < len(b):
        if b[i] == 0x5C:
            if b[i + 1] == 0x5C:
                out.append(0x5C)
                i += 2
            else:
                out.append(int(b[i + 1:i + 3], 16))
                i += 3
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


def client_tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Raw:
    """A raw SMTP connection for byte-exact tests (smuggling, pipelining)."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def reply(self):
        """Reads one whole (possibly multi-line) reply: (code, text)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed; got " + repr(self.buf + b"".join(lines)))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), b"\n".join(lines).decode("utf-8", "replace")

    def closed(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        self.sock.close()


def main():
    unittest.main(verbosity=2)
