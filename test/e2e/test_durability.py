"""Durability: every message that got a 250 survives kill -9; a full spool
answers 452 4.3.1 and the daemon keeps serving."""
import re
import threading
import time
import unittest

from harness import Ferry, Raw, main

BODY = b"Subject: durability\r\n\r\n" + (b"x" * 76 + b"\r\n") * 26  # ~2 KB


def sender(port, acked, lock, stop, max_total):
    """One connection, pipelined transactions, until stopped or broken."""
    try:
        r = Raw(port, timeout=20)
        r.reply()
        r.send(b"EHLO load.example\r\n")
        r.reply()
        while not stop.is_set():
            with lock:
                if len(acked) >= max_total:
                    return
            r.send(b"MAIL FROM:<load@example.com>\r\nRCPT TO:<sink@example.org>\r\nDATA\r\n")
            if [r.reply()[0] for _ in range(3)] != [250, 250, 354]:
                return
            r.send(BODY + b".\r\n")
            code, text = r.reply()
            if code != 250:
                return
            m = re.search(r"queued as (\w+)", text)
            with lock:
                acked.add(m.group(1))
    except (OSError, ConnectionError):
        return  # the daemon was killed under us: expected


class Durability(unittest.TestCase):
    def test_kill_9_loses_no_acknowledged_message(self):
        f = Ferry()
        try:
            f.start()
            acked, lock, stop = set(), threading.Lock(), threading.Event()
            threads = [threading.Thread(target=sender, args=(f.port("relay"), acked, lock, stop, 4000))
                       for _ in range(24)]
            for t in threads:
                t.start()
            deadline = time.time() + 60
            while time.time() < deadline:
                with lock:
                    if len(acked) >= 1500:
                        break
                time.sleep(0.01)
            f.kill()  # SIGKILL in the middle of the load
            stop.set()
            for t in threads:
                t.join(30)
            with lock:
                acked_now = set(acked)
            self.assertGreaterEqual(len(acked_now), 500, "load did not get going")
            on_disk = f.spool_ids()
            missing = acked_now - on_disk
            self.assertEqual(missing, set(), f"{len(missing)} acknowledged messages lost")
            # A restart recovers them all through the schedule index.
            f.start()
            m = re.search(r"spool\.recovered messages=(\d+)", f.log())
            self.assertGreaterEqual(int(m.group(1)), len(acked_now))
            self.assertEqual(f.stop(), 0)
            print(f"\nacknowledged before kill -9: {len(acked_now)}, in spool: {len(on_disk)}")
        finally:
            f.cleanup()

    def test_full_spool_answers_452_and_keeps_serving(self):
        f = Ferry(extra="limits:\n  max_message_size: 1MiB\n").start()
        # A spool of 4 MiB: the smallest that fits a few 400 KB messages.
        f.stop()
        with open(f.config_path) as c:
            text = c.read().replace("max_size: 64MiB", "max_size: 4MiB")
        with open(f.config_path, "w") as c:
            c.write(text)
        f.start()
        try:
            r = Raw(f.port("relay"))
            r.reply()
            r.send(b"EHLO a\r\n")
            r.reply()
            big = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 400
            accepted, full = [], None
            for _ in range(20):
                r.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
                [r.reply() for _ in range(3)]
                r.send(big + b".\r\n")
                code, text = r.reply()
                if code == 250:
                    accepted.append(text.split()[-1])
                else:
                    full = (code, text)
                    break
            self.assertIsNotNone(full, "spool never filled")
            self.assertEqual(full[1][:9], "452 4.3.1")
            self.assertGreater(len(accepted), 0)
            r.send(b"NOOP\r\n")
            self.assertEqual(r.reply()[0], 250)  # the session goes on
            self.assertTrue(f.wait_log(r"smtp\.spool_full"))  # the reader thread may lag the reply
            self.assertEqual(f.stop(), 0)
            self.assertTrue(set(accepted) <= f.spool_ids())
        finally:
            f.cleanup()


if __name__ == "__main__":
    main()
