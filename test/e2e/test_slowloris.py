"""Slowloris: clients that trickle bytes never hold a session past its deadlines.

    500 tricklers ──┐
                    ├──► ferryd (relay listener; command 2s, handshake 3s, data 2s)
    smtplib client ─┘

Three kinds of trickler, one byte at a time, all in one asyncio process:
  line   — "EHLO ..." at one byte per 0.5 s: no line ever completes
           → timeouts.command (2 s for the whole line, not per byte);
  noop   — whole "NOOP" lines, each well inside timeouts.command, and never
           a MAIL → timeouts.handshake (3 s from the connection);
  data   — a proper MAIL/RCPT/DATA, then content at one byte per 0.5 s
           → timeouts.data with timeouts.min_data_rate (2 s, 500 bytes/s).
Every one must be closed by the server with 421 4.4.2 within the bound (plus
a margin for a loaded machine under ASan) while normal clients submit mail:
smtplib, and one client streaming content slowly but above the minimum rate
for longer than timeouts.data.
Before per-line deadlines, each byte restarted the timer: none was closed.
"""
import asyncio
import smtplib
import time
import unittest
from email.message import EmailMessage

from harness import Ferry, main

N_LINE, N_NOOP, N_DATA = 300, 100, 100
TRICKLE = 0.5          # seconds between bytes
BOUND = 3.0            # the largest deadline configured below (handshake)
MARGIN = 7.0           # scheduling slack: 500 sessions, ASan, 2 shared cores
GIVE_UP = BOUND + MARGIN + 5.0   # a trickler still open then has won

CONFIG = """
limits:
  max_connections_per_client: 1000
timeouts:
  command: 2s
  handshake: 3s
  data: 2s
  min_data_rate: 500
"""


async def read_reply(reader):
    """One whole SMTP reply (all its lines), as bytes."""
    out = b""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed in reply: %r" % out)
        out += line
        if len(line) < 4 or line[3:4] != b"-":
            return out


async def trickler(kind, port, results):
    """Connects, trickles until the server hangs up; records (kind, seconds
    from greeting to EOF or None, the last bytes heard)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    heard = b""
    try:
        greeting = await asyncio.wait_for(read_reply(reader), GIVE_UP)
        start = time.monotonic()
        heard = greeting
        if kind == "line":
            payload = b"EHLO slow.example\r\n" * 10
            step = TRICKLE
        elif kind == "noop":
            writer.write(b"EHLO slow.example\r\n")
            payload = b"NOOP\r\n" * 50
            step = TRICKLE / 2  # a NOOP line every 1.5 s, inside timeouts.command
        else:
            writer.write(b"EHLO slow.example\r\nMAIL FROM:<a@example.com>\r\n"
                         b"RCPT TO:<b@example.org>\r\nDATA\r\n")
            for _ in range(4):
                heard += await asyncio.wait_for(read_reply(reader), GIVE_UP)
            assert heard.endswith(b"354 End data with <CR><LF>.<CR><LF>\r\n"), heard
            payload = b"Subject: slow\r\n\r\n" + b"x" * 200
            step = TRICKLE

        async def drain_replies():
            nonlocal heard
            while True:
                chunk = await reader.read(4096)
                if not chunk:
                    return time.monotonic() - start
                heard += chunk

        eof = asyncio.ensure_future(drain_replies())
        for i in range(len(payload)):  # bounded: the payload runs out
            if eof.done() or time.monotonic() - start > GIVE_UP:
                break
            try:
                writer.write(payload[i:i + 1])
                await writer.drain()
            except (ConnectionError, OSError):
                break
            await asyncio.sleep(step)
        try:
            closed_after = await asyncio.wait_for(eof, max(0.1, GIVE_UP - (time.monotonic() - start)))
        except asyncio.TimeoutError:
            closed_after = None
        except (ConnectionError, OSError):
            closed_after = time.monotonic() - start
        results.append((kind, closed_after, heard[-200:]))
    finally:
        writer.close()


def submit(port, n):
    """A normal client: n messages with smtplib, each must get its 250."""
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        for i in range(n):
            m = EmailMessage()
            m["From"], m["To"], m["Subject"] = "app@example.com", "user@example.org", f"normal {i}"
            m.set_content("served while tricklers wait\n")
            s.send_message(m)
    return n


async def steady(port):
    """Message content above timeouts.min_data_rate keeps a session alive
    past timeouts.data: 3 s of content at ~4 KB/s with data: 2s."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await read_reply(reader)
    writer.write(b"EHLO steady.example\r\nMAIL FROM:<a@example.com>\r\n"
                 b"RCPT TO:<b@example.org>\r\nDATA\r\n")
    for _ in range(4):
        await read_reply(reader)
    writer.write(b"Subject: steady\r\n\r\n")
    for _ in range(30):  # bounded
        writer.write(b"y" * 400 + b"\r\n")
        await writer.drain()
        await asyncio.sleep(0.1)
    writer.write(b".\r\n")
    reply = await asyncio.wait_for(read_reply(reader), 30)
    writer.close()
    return reply


async def attack(port):
    results = []
    tasks = []
    for kind, n in (("line", N_LINE), ("noop", N_NOOP), ("data", N_DATA)):
        tasks += [asyncio.ensure_future(trickler(kind, port, results)) for _ in range(n)]
    # Normal mail while every trickler is connected and trickling.
    await asyncio.sleep(1.0)
    slow_but_steady = asyncio.ensure_future(steady(port))
    loop = asyncio.get_running_loop()
    sent = await asyncio.wait_for(loop.run_in_executor(None, submit, port, 5), 60)
    steady_reply = await slow_but_steady
    errors = [r for r in await asyncio.gather(*tasks, return_exceptions=True) if r is not None]
    return results, errors, sent, steady_reply


class Slowloris(unittest.TestCase):
    def test_500_tricklers_are_all_closed_within_the_bound(self):
        f = Ferry(extra=CONFIG).start()
        try:
            before = len(f.spool_ids())
            results, errors, sent, steady_reply = asyncio.run(attack(f.port("relay")))
            self.assertEqual(errors, [])
            self.assertTrue(steady_reply.startswith(b"250 2.0.0 Ok: queued as "), steady_reply)
            self.assertEqual(len(results), N_LINE + N_NOOP + N_DATA)
            self.assertEqual(sent, 5)
            still_open = [r for r in results if r[1] is None]
            self.assertEqual(still_open[:3], [], f"{len(still_open)} tricklers kept their session")
            for kind, closed_after, heard in results:
                self.assertLessEqual(closed_after, BOUND + MARGIN, (kind, heard))
                self.assertIn(b"421 4.4.2", heard, (kind, heard))
            # Each kind met the deadline meant for it.
            log = f.log()
            for deadline in ("command", "handshake", "data"):
                self.assertRegex(log, r"smtp\.timeout .*deadline=" + deadline)
            # The normal clients' mail is queued; the data tricklers' is not.
            self.assertEqual(len(f.spool_ids()) - before, sent + 1)
        finally:
            self.assertEqual(f.stop(), 0)
            f.cleanup()


if __name__ == "__main__":
    main()
