"""A receiving SMTP server for the delivery tests (Python aiosmtpd).

One process serves several loopback addresses on one port, each its own
"MX host" with its own mailbox directory:

    receiver.py PORT DIR 127.0.0.2 127.0.0.3 ...

Each accepted message is written to DIR/<ip>/<n>.eml (content as received)
with DIR/<ip>/<n>.env holding "MAIL FROM" and "RCPT TO" lines. Connection
counts (total and peak concurrent) go to DIR/<ip>/stats.
Behaviour by recipient local part:
  reject*    → 550 5.1.1 at RCPT
  tempfail*  → 451 4.3.0 at RCPT the first time each address is seen
  grey*      → 451 4.7.1 at RCPT (greylisting) until GREY seconds after the
               address was first seen (GREY: $RECEIVER_GREY_SECONDS, default 3)
  greydata*  → 451 4.3.0 at the end of DATA for the same while
Prints "ready" once every address listens.
"""
import asyncio
import os
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

PORT = int(sys.argv[1])
ROOT = sys.argv[2]
ADDRS = sys.argv[3:]
GREY = float(os.environ.get("RECEIVER_GREY_SECONDS", "3"))


class Stats:
    def __init__(self, directory):
        self.dir = directory
        self.total = 0
        self.current = 0
        self.peak = 0

    def write(self):
        with open(os.path.join(self.dir, "stats.tmp"), "w") as f:
            f.write(f"total={self.total} peak={self.peak}\n")
        os.replace(os.path.join(self.dir, "stats.tmp"), os.path.join(self.dir, "stats"))


class CountingSMTP(SMTP):
    def __init__(self, handler, stats, **kw):
        super().__init__(handler, **kw)
        self._stats = stats

    def connection_made(self, transport):
        self._stats.total += 1
        self._stats.current += 1
        self._stats.peak = max(self._stats.peak, self._stats.current)
        self._stats.write()
        super().connection_made(transport)

    def connection_lost(self, exc):
        self._stats.current -= 1
        self._stats.write()
        super().connection_lost(exc)


class Handler:
    def __init__(self, directory):
        self.dir = directory
        self.n = 0
        self.seen = set()
        self.first_seen = {}

    def greylisted(self, address):
        first = self.first_seen.setdefault(address, time.monotonic())
        return time.monotonic() - first < GREY

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: no such user" % address
        if local.startswith("tempfail") and address not in self.seen:
            self.seen.add(address)
            return "451 4.3.0 try again later"
        if local.startswith("grey") and not local.startswith("greydata") and self.greylisted(address):
            return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(r.split("@")[0].startswith("greydata") and self.greylisted(r) for r in envelope.rcpt_tos):
            return "451 4.3.0 not yet, try again later"
        self.n += 1
        base = os.path.join(self.dir, str(self.n))
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".env", "w") as f:
            f.write("MAIL FROM " + envelope.mail_from + "\n")
            for r in envelope.rcpt_tos:
                f.write("RCPT TO " + r + "\n")
        os.replace(base + ".tmp", base + ".eml")
        return "250 2.0.0 OK queued"


class CountingController(Controller):
    def __init__(self, handler, stats, **kw):
        self._stats = stats
        super().__init__(handler, **kw)

    def factory(self):
        return CountingSMTP(self.handler, self._stats, decode_data=False, enable_SMTPUTF8=True)


controllers = []
for ip in ADDRS:
    d = os.path.join(ROOT, ip)
    os.makedirs(d, exist_ok=True)
    stats = Stats(d)
    stats.write()
    c = CountingController(Handler(d), stats, hostname=ip, port=PORT)
    c.start()
    controllers.append(c)
print("ready", flush=True)
try:
    sys.stdin.read()  # runs until the test closes our stdin
finally:
    for c in controllers:
        c.stop()
