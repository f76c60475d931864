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
        self.hold_port = free_port()
        self.write_config(listeners, extra)

    def write_config(self, listeners=DEFAULT_LISTENERS, extra=""):
        with open(self.config_path, "w") as f:
            f.write("server:\n  hostname: relay.test\n  shutdown_timeout: 5s\n")
            f.write("listeners:" + listeners + "\n")
            f.write("tls:\n  certificate: cert.pem\n  key: key.pem\n")
            f.write("auth:\n  users_file: users.yaml\n  failure_delay: 50ms\n")
            f.write("spool:\n  path: spool\n  max_size: 64MiB\n")
            f.write("control:\n  socket: control.sock\n")
            if "delivery:" not in extra:
                # Accept-path tests keep their mail queued: everything is
                # routed to a loopback port nobody listens on, so delivery
                # defers (connection refused) and the spool can be inspected.
                f.write("delivery:\n  routes:\n    - { domain: \"*\", host: \"127.0.0.1:%d\" }\n"
                        % self.hold_port)
            f.write(extra)

    @property
    def socket(self):
        return os.path.join(self.dir, "control.sock")

    def ctl(self, *args, input=None):
        """Runs ferryctl against this daemon: (exit status, stdout, stderr)."""
        out = subprocess.run([FERRYCTL, "-s", self.socket, *args], capture_output=True, text=True,
                             input=input, timeout=30)
        return out.returncode, out.stdout, out.stderr

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
        if rc != 0:  # show why (sanitizer reports end up here too)
            sys.stderr.write(f"ferryd exited {rc}; last log lines:\n" + "".join(self.log_lines[-60:]))
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
        """{key: value} of one named database, via mdb_dump (hex format: its
        printable format leaves backslashes unescaped in LMDB 0.9.24)."""
        out = subprocess.run(["mdb_dump", "-s", db, self.spool], capture_output=True,
                             check=True).stdout
        lines = out.split(b"\n")
        i = lines.index(b"HEADER=END") + 1
        result = {}
        while i + 1 < len(lines) and lines[i].startswith(b" "):
            result[bytes.fromhex(lines[i][1:].decode())] = bytes.fromhex(lines[i + 1][1:].decode())
            i += 2
        return result

    def spool_entries(self, db):
        """Entries of one named database, from mdb_stat as an admin reads it."""
        out = subprocess.run(["mdb_stat", "-s", db, self.spool], capture_output=True, text=True,
                             check=True).stdout
        return int(re.search(r"Entries: (\d+)", out).group(1))

    def spool_ids(self):
        return {k.decode() for k in self.spool_dump("msg")}

    def spool_body(self, msg_id):
        """The body bytes, without the checksum frame of an unencrypted body
        ("\\0FB\\x01" + CRC-32, lib/spool/spool_record.h)."""
        stored = self.spool_dump("body").get(msg_id.encode())
        if stored is not None and stored.startswith(b"\0FB\x01"):
            return stored[8:]
        return stored


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


class SharedFerry(unittest.TestCase):
    """One ferryd for every test of the class; stopped (exit 0 checked) at the end."""
    ferry_args = {}

    @classmethod
    def setUpClass(cls):
        cls.f = Ferry(**cls.ferry_args).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.f.stop()
        cls.f.cleanup()
        assert rc == 0, f"ferryd exited {rc}"


def main():
    unittest.main(verbosity=2)


# --- delivery worlds: a DNS server and receiving MX hosts on loopback ------

def wait_for(pred, timeout=10, interval=0.05):
    """Polls pred until it is true or timeout seconds have passed; returns
    its last value (bounded: every wait in the tests goes through here)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def free_port(addresses=("127.0.0.1",), kind=socket.SOCK_STREAM):
    """A port free on every address given (TCP, or UDP with kind)."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, kind)
        s.bind((addresses[0], 0))
        port = s.getsockname()[1]
        s.close()
        ok = True
        for a in addresses[1:]:
            t = socket.socket(socket.AF_INET, kind)
            try:
                t.bind((a, port))
            except OSError:
                ok = False
            finally:
                t.close()
        if ok:
            return port
    raise RuntimeError("no common free port")


class Dns:
    """dnsmasq on 127.0.0.1, authoritative for *.test from a record list."""

    def __init__(self, mx=(), hosts=()):
        self.port = free_port(("127.0.0.1",), socket.SOCK_DGRAM)
        args = ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--listen-address=127.0.0.1",
                f"--port={self.port}", "--bind-interfaces", "--no-resolv", "--no-hosts",
                "--local=/test/", "--pid-file=", "--user=root"]
        for domain, target, pref in mx:
            args.append(f"--mx-host={domain},{target},{pref}")
        for name, ip in hosts:
            args.append(f"--host-record={name},{ip}")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind(("127.0.0.1", self.port))
                s.close()
                time.sleep(0.05)  # not bound yet
            except OSError:
                return  # dnsmasq has it
        raise RuntimeError("dnsmasq did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)


class Receivers:
    """aiosmtpd MX hosts: one per address, all on one port."""

    def __init__(self, addresses, grey_seconds=None):
        self.dir = tempfile.mkdtemp(prefix="ferry-mx-")
        self.port = free_port(tuple(addresses))
        here = os.path.dirname(os.path.abspath(__file__))
        env = dict(os.environ)
        if grey_seconds is not None:
            env["RECEIVER_GREY_SECONDS"] = str(grey_seconds)
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(here, "receiver.py"), str(self.port),
                                      self.dir, *addresses], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError("receiver did not start: " + line)

    def messages(self, ip):
        d = os.path.join(self.dir, ip)
        out = []
        for name in sorted(os.listdir(d), key=lambda n: (len(n), n)):
            if name.endswith(".eml"):
                base = os.path.join(d, name[:-4])
                env = open(base + ".env").read().splitlines()
                out.append((env, open(base + ".eml", "rb").read()))
        return out

    def wait_count(self, ip, n, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.messages(ip)) >= n:
                return self.messages(ip)
            time.sleep(0.05)
        return self.messages(ip)

    def stats(self, ip):
        text = open(os.path.join(self.dir, ip, "stats")).read()
        return dict((k, int(v)) for k, v in (p.split("=") for p in text.split()))

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def strip_received(raw):
    """Drops ferry's own Received: header (the first, with its folded lines)."""
    assert raw.startswith(b"Received: "), raw[:80]
    end = raw.index(b"\r\n")
    while raw[end + 2:end + 3] in (b"\t", b" "):
        end = raw.index(b"\r\n", end + 2)
    return raw[end + 2:]
