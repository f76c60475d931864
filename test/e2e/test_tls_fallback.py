"""Outbound TLS that fails (issue 9, items 7 and 8).

    smtplib --> ferryd --STARTTLS--x mx.broken.test (scripted_mx "broken_tls")
                       --plaintext---> mx.broken.test     (delivery.tls: may only)

The MX offers STARTTLS, sends its self-signed certificate and aborts the
handshake, like an OpenSMTPD 6.8 on OpenSSL 3 with a broken TLS setup.
Under `may` ferry retries that host at once without STARTTLS and remembers
it; under `encrypt` (and for routes with credentials) it never falls back.
Meanwhile idle STARTTLS sessions on ferry's own submission listener must
not be hurt by the failing handshakes (OpenSSL's per-thread error queue).
Each class runs its own dnsmasq, scripted MX and ferryd.
"""
import os
import re
import shutil
import smtplib
import socket
import tempfile
import threading
import time
import unittest

from harness import client_tls_context, DEFAULT_LISTENERS, Dns, Ferry, free_port, main, make_cert, wait_for
from scripted_mx import ScriptedMx

BROKEN, GOOD = "127.0.0.21", "127.0.0.24"
RELAY = """
  - name: relay
    address: 127.0.0.1:0
"""


def world(dns, port, tls, extra_delivery=""):
    return (f"dns:\n  servers: [\"127.0.0.1:{dns.port}\"]\n"
            f"delivery:\n  port: {port}\n  tls: {tls}\n  connect_timeout: 2s\n  idle_timeout: 2s\n"
            f"  retry: {{ min_backoff: 1s, max_backoff: 2s, max_lifetime: 1h }}\n" + extra_delivery)


def submit(port, rcpt, subject):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.sendmail("app@src.test", [rcpt], f"Subject: {subject}\r\n\r\nbody of {subject}\r\n")



class BrokenWorld(unittest.TestCase):
    """dnsmasq + one broken-TLS MX; subclasses add their ferryd."""
    domains = ["broken.test"]

    @classmethod
    def setUpClass(cls):
        cls.certdir = tempfile.mkdtemp(prefix="ferry-mxcert-")
        make_cert(cls.certdir)
        cls.dns = Dns(mx=[(d, "mx.broken.test", 10) for d in cls.domains],
                      hosts=[("mx.broken.test", BROKEN)])
        cls.port = free_port((BROKEN, GOOD))
        cls.mx = ScriptedMx(BROKEN, cls.port, "broken_tls", cls.certdir)

    @classmethod
    def tearDownClass(cls):
        rc = cls.f.stop()
        cls.f.cleanup()
        cls.mx.stop()
        cls.dns.stop()
        shutil.rmtree(cls.certdir, ignore_errors=True)
        assert rc == 0, f"ferryd exited {rc}"


class MayFallsBack(BrokenWorld):
    domains = ["broken.test", "authroute.test"]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        f = Ferry(listeners=RELAY)
        with open(os.path.join(f.dir, "route.pw"), "w") as pw:
            pw.write("route-secret\n")
        route = (f"  routes:\n    - {{ domain: authroute.test, host: \"{BROKEN}:{cls.port}\", "
                 f"username: relayuser, password_file: route.pw }}\n")
        f.write_config(RELAY, world(cls.dns, cls.port, "may", route))
        cls.f = f.start()

    def test_1_plaintext_on_the_immediate_retry_then_remembered(self):
        submit(self.f.port("relay"), "first@broken.test", "first")
        self.assertTrue(wait_for(lambda: self.mx.delivered("first@broken.test"), 30), self.f.log())
        self.assertFalse(self.mx.delivered("first@broken.test")[0]["tls"])
        self.assertEqual(self.mx.starttls, 1)
        # Delivered by the first attempt, in plaintext, naming the MX.
        self.assertTrue(self.f.wait_log(
            r'info delivered id=\S+ from=app@src.test rcpt=first@broken.test mx=mx.broken.test tls="" '
            r'.*attempt=1'), self.f.log())
        self.assertNotRegex(self.f.log(), r"deferred .*rcpt=first@broken.test")
        # The log names the real handshake failure; `may` does not verify,
        # so no certificate verification error may be reported.
        self.assertRegex(self.f.log(), r'warn delivery.tls_fallback id=\S+ mx=mx.broken.test ip=127.0.0.21 '
                                       r'error="[^"]*TLS handshake failed: [^"]*alert handshake failure')
        self.assertNotIn("certificate verification", self.f.log())

        # Remembered: the next message goes straight to plaintext.
        submit(self.f.port("relay"), "second@broken.test", "second")
        self.assertTrue(wait_for(lambda: self.mx.delivered("second@broken.test"), 30), self.f.log())
        self.assertFalse(self.mx.delivered("second@broken.test")[0]["tls"])
        self.assertEqual(self.mx.starttls, 1)
        self.assertEqual(len(re.findall(r"delivery.tls_fallback", self.f.log())), 1)

    def test_2_route_with_credentials_never_falls_back(self):
        submit(self.f.port("relay"), "x@authroute.test", "credentials")
        self.assertTrue(self.f.wait_log(r"warn deferred id=\S+ from=app@src.test rcpt=x@authroute.test "
                                        r"mx=127.0.0.21 .*TLS handshake failed", 20), self.f.log())
        self.assertEqual(self.mx.delivered("x@authroute.test"), [])
        self.assertNotRegex(self.f.log(), r"delivery.tls_fallback .*mx=127.0.0.21")


class EncryptNeverFallsBack(BrokenWorld):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.f = Ferry(listeners=RELAY, extra=world(cls.dns, cls.port, "encrypt")).start()

    def test_deferred_with_the_handshake_error_never_plaintext(self):
        submit(self.f.port("relay"), "enc@broken.test", "encrypt")
        self.assertTrue(self.f.wait_log(
            r'warn deferred id=\S+ from=app@src.test rcpt=enc@broken.test mx=mx.broken.test tls="" '
            r'response="[^"]*TLS handshake failed: [^"]*alert handshake failure', 20), self.f.log())
        # Retried, with STARTTLS every time, and never delivered in clear.
        self.assertTrue(wait_for(lambda: self.mx.starttls >= 2, 20), self.mx.starttls)
        self.assertEqual(self.mx.delivered("enc@broken.test"), [])
        self.assertNotIn("delivery.tls_fallback", self.f.log())
        self.assertNotIn("certificate verification", self.f.log())


class TlsSession:
    """An inbound STARTTLS session on ferry's submission listener, left idle
    after EHLO + STARTTLS + EHLO, then poked with NOOP."""

    def __init__(self, port):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = raw.makefile("rb")
        self._expect(f, 220)
        raw.sendall(b"EHLO idle.example\r\n")
        self._expect(f, 250)
        raw.sendall(b"STARTTLS\r\n")
        self._expect(f, 220)
        self.sock = client_tls_context().wrap_socket(raw, server_hostname="relay.test")
        self.f = self.sock.makefile("rb")
        self.sock.sendall(b"EHLO idle.example\r\n")
        self._expect(self.f, 250)

    @staticmethod
    def _expect(f, code):
        while True:
            line = f.readline()
            if not line:
                raise ConnectionError("closed")
            if line[3:4] != b"-":
                if int(line[:3]) != code:
                    raise ConnectionError(line.decode(errors="replace"))
                return

    def cmd(self, line, code):
        self.sock.sendall(line + b"\r\n")
        self._expect(self.f, code)


class FailingHandshakesDoNotHurtOtherSessions(BrokenWorld):
    """Item 8: ferry fails outbound handshakes over and over (tls_fallback_ttl
    0 and one message per connection, so every message to broken*.test fails
    one) and completes others (good*.test, a working STARTTLS), while 40
    idle STARTTLS sessions on the submission listener are poked with NOOP.
    Not one session, inbound or outbound, may be lost."""
    domains = [f"broken{i}.test" for i in range(20)] + [f"good{i}.test" for i in range(10)]
    messages = 60
    sessions = 40

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dns.stop()  # this world has a second, working MX
        cls.dns = Dns(mx=[(d, "mx.good.test" if d.startswith("good") else "mx.broken.test", 10)
                          for d in cls.domains],
                      hosts=[("mx.broken.test", BROKEN), ("mx.good.test", GOOD)])
        cls.good = ScriptedMx(GOOD, cls.port, "good_tls", cls.certdir)
        cls.f = Ferry(listeners=DEFAULT_LISTENERS,
                      extra=world(cls.dns, cls.port, "may",
                                  "  tls_fallback_ttl: 0s\n  messages_per_connection: 1\n")).start()

    @classmethod
    def tearDownClass(cls):
        cls.good.stop()
        super().tearDownClass()

    def delivered(self, rcpt):
        return self.mx.delivered(rcpt) + self.good.delivered(rcpt)

    def test_zero_drops(self):
        sessions = [TlsSession(self.f.port("submission")) for _ in range(self.sessions)]
        submitted = []

        def producer():
            for i in range(self.messages):
                rcpt = f"m{i}@{self.domains[i % len(self.domains)]}"
                submit(self.f.port("relay"), rcpt, f"load {i}")
                submitted.append(rcpt)
                time.sleep(0.02)

        t = threading.Thread(target=producer)
        t.start()
        drops = []
        delivered = lambda: sum(len(self.delivered(r)) for r in list(submitted))
        deadline = time.time() + 60
        rounds = 0
        # Bounded: until every message is delivered (at least 20 rounds),
        # or 60 s, or 600 rounds.
        while rounds < 600 and time.time() < deadline and (
                rounds < 20 or t.is_alive() or delivered() < self.messages):
            rounds += 1
            for n, s in enumerate(sessions):
                if s is None:
                    continue
                try:
                    s.cmd(b"NOOP", 250)
                except (OSError, ConnectionError) as e:
                    drops.append((n, rounds, repr(e)))
                    sessions[n] = None
            time.sleep(0.02)
        t.join(30)
        tls_closes = [line for line in self.f.log_lines if "net.tls_error side=server" in line]
        self.assertEqual(drops, [], "".join(tls_closes))
        # The failures really happened, one per message to broken*.test, and
        # the good MX got every one of its messages over TLS.
        broken = [r for r in submitted if r.split("@")[1].startswith("broken")]
        good = [r for r in submitted if r.split("@")[1].startswith("good")]
        self.assertGreaterEqual(self.mx.starttls, len(broken))
        self.assertEqual(delivered(), self.messages)
        self.assertTrue(all(m["tls"] for r in good for m in self.good.delivered(r)))
        self.assertEqual(self.good.starttls, len(good))
        for s in sessions:  # still a working session: a transaction, then QUIT
            s.cmd(b"RSET", 250)
            s.cmd(b"QUIT", 221)
        self.assertEqual(tls_closes, [])


if __name__ == "__main__":
    main()
