"""PROXY protocol v2 on a listener: the client address comes from the
header (Received:, relay policy), a LOCAL header keeps the socket's own,
and a connection without a header is dropped."""
import socket
import struct
import unittest

from harness import SharedFerry, Ferry, Raw, main

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v4(src, dst="127.0.0.1", sport=40000, dport=25):
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return SIG + bytes([0x21, 0x11]) + struct.pack("!H", len(addrs)) + addrs


class Proxy(SharedFerry):
    ferry_args = dict(listeners="""
  - name: proxied
    address: 127.0.0.1:0
    proxy_protocol: true
""", extra="relay:\n  trusted_networks: [192.0.2.0/24]\n")

    def session(self, header):
        r = Raw(self.f.port("proxied"))
        r.send(header)
        self.assertEqual(r.reply()[0], 220)
        r.send(b"EHLO lb.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n")
        return r, [r.reply()[0] for _ in range(3)]

    def test_client_address_from_header(self):
        r, codes = self.session(proxy_v4("192.0.2.9"))
        self.assertEqual(codes, [250, 250, 250])  # 192.0.2.9 is trusted
        r.send(b"DATA\r\n")
        r.reply()
        r.send(b"Subject: p\r\n\r\nx\r\n.\r\n")
        code, text = r.reply()
        self.assertEqual(code, 250)
        self.assertIn(b"([192.0.2.9])", self.f.spool_body(text.split()[-1]))

    def test_untrusted_proxied_client_cannot_relay(self):
        r, codes = self.session(proxy_v4("198.51.100.7"))
        self.assertEqual(codes, [250, 250, 554])

    def test_local_command_keeps_socket_address(self):
        r, codes = self.session(SIG + bytes([0x20, 0x00, 0x00, 0x00]))
        self.assertEqual(codes, [250, 250, 554])  # 127.0.0.1 is not in trusted_networks here

    def test_missing_header_is_dropped(self):
        r = Raw(self.f.port("proxied"))
        r.send(b"EHLO direct.example\r\n")
        self.assertTrue(r.closed())


if __name__ == "__main__":
    main()
