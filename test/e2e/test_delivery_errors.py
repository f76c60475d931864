"""What a deferral says when the MX hangs up (issue 9, item 10).

    smtplib --> ferryd --> mx.r421.test  (scripted_mx "rcpt_421": 421 to a pipelined RCPT, close)
                       --> mx.drop.test  (scripted_mx "drop_after_mail": close after MAIL's 250)

The 421 the server gave before hanging up is the recipient's deferral
reply (not "connection lost"), and every deferral names the MX host that
was being talked to. One dnsmasq, two scripted MX hosts, one ferryd.
"""
import json
import shutil
import smtplib
import tempfile
import unittest

from harness import Dns, Ferry, free_port, main, make_cert
from scripted_mx import ScriptedMx

R421, DROP = "127.0.0.22", "127.0.0.23"
RELAY = """
  - name: relay
    address: 127.0.0.1:0
"""


class Drops(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certdir = tempfile.mkdtemp(prefix="ferry-mxcert-")
        make_cert(cls.certdir)
        cls.dns = Dns(mx=[("r421.test", "mx.r421.test", 10), ("drop.test", "mx.drop.test", 10)],
                      hosts=[("mx.r421.test", R421), ("mx.drop.test", DROP)])
        port = free_port((R421, DROP))
        cls.mx421 = ScriptedMx(R421, port, "rcpt_421", cls.certdir)
        cls.mxdrop = ScriptedMx(DROP, port, "drop_after_mail", cls.certdir)
        cls.f = Ferry(listeners=RELAY, extra=(
            f"dns:\n  servers: [\"127.0.0.1:{cls.dns.port}\"]\n"
            f"delivery:\n  port: {port}\n  connect_timeout: 2s\n"
            f"  retry: {{ min_backoff: 1h, max_backoff: 1h, max_lifetime: 1d }}\n")).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.f.stop()
        cls.f.cleanup()
        cls.mx421.stop()
        cls.mxdrop.stop()
        cls.dns.stop()
        shutil.rmtree(cls.certdir, ignore_errors=True)
        assert rc == 0, f"ferryd exited {rc}"

    def submit(self, rcpts):
        with smtplib.SMTP("127.0.0.1", self.f.port("relay"), timeout=10) as s:
            s.sendmail("app@src.test", rcpts, "Subject: drops\r\n\r\nbody\r\n")

    def events(self, address):
        rc, out, err = self.f.ctl("log", "search", "--address", address, "--json")
        self.assertEqual(rc, 0, err)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def test_421_to_a_pipelined_rcpt_is_the_deferral_reply(self):
        self.submit(["one@r421.test", "two@r421.test"])
        for rcpt in ("one@r421.test", "two@r421.test"):
            self.assertTrue(self.f.wait_log(
                rf'warn deferred id=\S+ from=app@src.test rcpt={rcpt} mx=mx.r421.test tls="" '
                r'response="421 4.7.0 scripted-421 too busy, closing" attempt=1', 20), self.f.log())
        ev = [e for e in self.events("one@r421.test") if e["event"] == "deferred"]
        self.assertEqual(len(ev), 1, ev)
        self.assertEqual((ev[0]["code"], ev[0]["enhanced"], ev[0]["mx"]), (421, "4.7.0", "mx.r421.test"))
        self.assertNotIn("connection lost", ev[0]["response"])

    def test_a_dropped_connection_defers_naming_the_mx(self):
        self.submit(["gone@drop.test"])
        self.assertTrue(self.f.wait_log(
            r'warn deferred id=\S+ from=app@src.test rcpt=gone@drop.test mx=mx.drop.test tls="" '
            r'response="451 4.4.1 connection lost: mx.drop.test\[127.0.0.23\]: server closed connection"', 20), self.f.log())
        ev = [e for e in self.events("gone@drop.test") if e["event"] == "deferred"]
        self.assertEqual(len(ev), 1, ev)
        self.assertEqual(ev[0]["mx"], "mx.drop.test")


if __name__ == "__main__":
    main()
