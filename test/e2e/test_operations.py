"""Operations: sd_notify messages in order, SIGHUP storms under load (no
transaction lost, no connection dropped; an invalid config changes
nothing; listeners added and removed), SIGTERM under load, /metrics."""
import os
import re
import signal
import smtplib
import socket
import threading
import time
import unittest
import urllib.request

from harness import Ferry, Raw, Receivers, main

BODY = b"Subject: ops\r\n\r\n" + b"line\r\n" * 20


class Load:
    """Pipelined submissions on several connections, counting 250s."""

    def __init__(self, port, conns=4):
        self.acked, self.errors, self.lock, self.stop = [], [], threading.Lock(), threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(port,)) for _ in range(conns)]
        for t in self.threads:
            t.start()

    def run(self, port):
        try:
            r = Raw(port, timeout=20)
            r.reply()
            r.send(b"EHLO load\r\n")
            r.reply()
            while not self.stop.is_set():
                r.send(b"MAIL FROM:<load@src.example>\r\nRCPT TO:<x@dest.example>\r\nDATA\r\n")
                codes = [r.reply()[0] for _ in range(3)]
                r.send(BODY + b".\r\n")
                code, text = r.reply()
                with self.lock:
                    if codes == [250, 250, 354] and code == 250:
                        self.acked.append(text.split()[-1])
                    else:
                        self.errors.append((codes, code, text))
                time.sleep(0.005)
            r.send(b"QUIT\r\n")
            r.reply()
        except Exception as e:  # a dropped connection is a failure here
            with self.lock:
                self.errors.append(repr(e))

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)


class Notify:
    """A NOTIFY_SOCKET like systemd's, read continuously: an unread socket
    fills its queue (net.unix.max_dgram_qlen) and sd_notify then blocks."""

    def __init__(self):
        self.path = f"/tmp/ferry-notify-{os.getpid()}-{time.time_ns()}.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        while not self.done.is_set():
            try:
                self.messages.extend(m for m in self.sock.recv(4096).decode().split("\n") if m)
            except socket.timeout:
                pass

    def wait(self, message, count=1, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline and self.messages.count(message) < count:
            time.sleep(0.02)
        return self.messages.count(message) >= count

    def close(self):
        self.done.set()
        self.thread.join(2)
        self.sock.close()
        os.unlink(self.path)


EXTRA_LISTENER = """
  - name: extra
    address: 127.0.0.1:%d
"""


class Operations(unittest.TestCase):
    def test_sd_notify_reload_storm_and_listeners(self):
        f = Ferry()
        ns = Notify()
        os.environ["NOTIFY_SOCKET"] = ns.path
        try:
            f.start()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        try:
            self.assertTrue(ns.wait("READY=1"))
            load = Load(f.port("relay"))
            base = open(f.config_path).read()
            from harness import DEFAULT_LISTENERS, free_port
            extra_port = free_port()
            with_extra = base.replace("listeners:" + DEFAULT_LISTENERS,
                                      "listeners:" + DEFAULT_LISTENERS + EXTRA_LISTENER % extra_port)
            self.assertNotEqual(with_extra, base)
            invalid = base + "limits:\n  max_message_size: huge\n"
            def hup(text):
                # One SIGHUP at a time: signals that arrive while a reload
                # runs may be merged, and the file must not change under it.
                with open(f.config_path, "w") as c:
                    c.write(text)
                n = len(re.findall(r"reload\.(ok|failed)", f.log()))
                f.proc.send_signal(signal.SIGHUP)
                deadline = time.time() + 15
                while time.time() < deadline and len(re.findall(r"reload\.(ok|failed)", f.log())) == n:
                    time.sleep(0.01)

            for i in range(20):
                hup(invalid if i == 7 else (with_extra if i % 2 == 0 else base))
            # Leave it with the extra listener: it accepts; then remove it: it refuses.
            hup(with_extra)
            hup(with_extra)
            try:
                r = Raw(extra_port)
            except OSError:
                self.fail("\n".join(l for l in f.log().splitlines() if "listener" in l or "reload" in l))
            self.assertEqual(r.reply()[0], 220)
            r.close()
            hup(base)
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", extra_port), timeout=2)
            load.finish()
            self.assertEqual(load.errors, [])
            self.assertGreater(len(load.acked), 20)
            self.assertEqual(set(load.acked) - f.spool_ids(), set())
            self.assertEqual(len(re.findall(r"reload.failed .*'huge' is not a size", f.log())), 1)
            self.assertRegex(f.log(), re.escape(f.config_path) + r":\d+:\d+: 'huge' is not a size")
            self.assertGreaterEqual(len(re.findall(r"reload.ok", f.log())), 20)
            self.assertEqual(f.stop(), 0)
            self.assertTrue(ns.wait("STOPPING=1"))
            seq = [m for m in ns.messages if m in ("READY=1", "RELOADING=1", "STOPPING=1")]
            self.assertEqual(seq[0], "READY=1")
            self.assertEqual(seq[-1], "STOPPING=1")
            reloads = seq.count("RELOADING=1")
            self.assertEqual(reloads, 23)
            for i in range(1, 1 + 2 * reloads, 2):
                self.assertEqual(seq[i:i + 2], ["RELOADING=1", "READY=1"])
        finally:
            ns.close()
            f.cleanup()

    def test_sigterm_under_load_then_delivery_after_restart(self):
        rx = Receivers(["127.0.0.9"])
        f = Ferry()
        try:
            f.start()
            load = Load(f.port("relay"), conns=6)
            time.sleep(1.5)
            self.assertEqual(f.stop(), 0)  # SIGTERM mid-load: graceful, exit 0
            load.finish()
            acked = set(load.acked)
            self.assertGreater(len(acked), 20)
            self.assertEqual(acked - f.spool_ids(), set())
            # Point delivery at a real receiver and restart: all of it arrives.
            f.write_config(extra="delivery:\n  routes:\n    - { domain: \"*\", host: \"127.0.0.9:%d\" }\n" % rx.port)
            f.start()
            # The mail was deferred before the stop; an admin flushes it.
            rc, out, err = f.ctl("queue", "flush")
            self.assertEqual(rc, 0, err)
            got = rx.wait_count("127.0.0.9", len(acked), timeout=60)
            self.assertGreaterEqual(len(got), len(acked))
            deadline = time.time() + 30
            while time.time() < deadline and f.spool_ids():
                time.sleep(0.5)
                f.ctl("queue", "flush")  # a receiver hiccup under load defers a few: retry them
            left = f.spool_ids()
            self.assertEqual(left, set(), [l for l in f.log().splitlines() if any(i in l for i in left)][:10])
            self.assertEqual(f.stop(), 0)
        finally:
            f.cleanup()
            rx.stop()

    def test_metrics(self):
        f = Ferry(extra="metrics:\n  address: 127.0.0.1:0\n").start()
        try:
            port = int(re.search(r"metrics.listening address=127.0.0.1:(\d+)", f.log()).group(1))
            for i in range(3):
                with smtplib.SMTP("127.0.0.1", f.port("relay"), timeout=10) as s:
                    s.sendmail("a@src.example", ["b@dest.example"], BODY)
            with smtplib.SMTP("127.0.0.1", f.port("relay"), timeout=10) as s:
                s.ehlo("x")
                s.docmd("MAIL FROM:<a@src.example>")
                s.docmd("RCPT TO:<b@dest.example>")
                s.docmd("DATA")
                s.send(b"Subject: x\r\n\r\nbare\nlf\r\n.\r\n")
                s.getreply()
            f.wait_log(r"deferred .*attempt=1")
            time.sleep(1.2)  # gauges refresh every second
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            values = {}
            types = {}
            for line in text.splitlines():
                if line.startswith("# TYPE "):
                    _, _, name, kind = line.split()
                    types[name] = kind
                    continue
                if line.startswith("#"):
                    continue
                m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+]+|\+Inf)', line)
                self.assertIsNotNone(m, "not Prometheus text: " + line)
                values[m.group(1) + (m.group(2) or "")] = float(m.group(3))
            self.assertEqual(values["ferry_messages_received_total"], 3)
            self.assertEqual(values["ferry_messages_rejected_total"], 1)
            self.assertEqual(values["ferry_connections_total"], 4)
            self.assertEqual(values["ferry_queue_messages"], 3)
            self.assertGreaterEqual(values['ferry_deliveries_total{result="deferred"}'], 3)
            self.assertEqual(types["ferry_spool_commit_seconds"], "histogram")
            self.assertGreaterEqual(values["ferry_spool_commit_seconds_count"], 3)
            self.assertEqual(values['ferry_spool_commit_seconds_bucket{le="+Inf"}'],
                             values["ferry_spool_commit_seconds_count"])
            self.assertEqual(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read(), b"ok\n")
            self.assertEqual(f.stop(), 0)
        finally:
            f.cleanup()


if __name__ == "__main__":
    main()
