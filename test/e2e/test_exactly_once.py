"""Retries deliver exactly once, and every committed message is delivered.

    smtplib/raw ──► ferryd ──► dnsmasq: a.test b.test c.test dead.test
                           └─► aiosmtpd MX hosts 127.0.0.2-4: greylisting
                               (451 at RCPT, or 451 after DATA, for the
                               first seconds of each address)

Many messages to several destinations are deferred again and again, then
accepted (what greylisting does to every first delivery): each recipient
must get its message exactly once, the queue must end empty (msg, body and
sched all zero in mdb_stat) and a restart must recover nothing and find no
orphan. The same with a kill -9 in the middle: nothing lost, duplicates only
for transactions in flight at the kill. A message whose client hangs up
right after the final dot is delivered like any other; queue flush counts
what it releases.
"""
import collections
import json
import os
import re
import smtplib
import socket
import time
import unittest

from harness import Dns, Ferry, main, Receivers, wait_for

A, B, C, DEAD = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"
RELAY = """
  - name: relay
    address: 127.0.0.1:0
    tls: none
    auth: none
"""
MESSAGES = 80
WINDOW = 3  # connections_per_destination


def dns():
    return Dns(mx=[("a.test", "mx.a.test", 10), ("b.test", "mx.b.test", 10), ("c.test", "mx.c.test", 10),
                   ("dead.test", "mx.dead.test", 10)],
               hosts=[("mx.a.test", A), ("mx.b.test", B), ("mx.c.test", C), ("mx.dead.test", DEAD)])


def config(d, rx, backoff="1s"):
    return (f"dns:\n  servers: [\"127.0.0.1:{d.port}\"]\n"
            f"delivery:\n  port: {rx.port}\n  connections_per_destination: {WINDOW}\n"
            f"  idle_timeout: 2s\n  connect_timeout: 2s\n"
            f"  retry: {{ min_backoff: {backoff}, max_backoff: {backoff}, max_lifetime: 1h }}\n")


def recipients(i):
    # Every address is new, so each one is greylisted on its first attempts;
    # b.test refuses after DATA, the others at RCPT.
    r = [f"grey{i}@a.test", f"greydata{i}@b.test"]
    if i % 2:
        r.append(f"grey{i}@c.test")
    return r


ALL_RCPTS = [r for i in range(MESSAGES) for r in recipients(i)]


def submit_all(port):
    ids = []
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        for i in range(MESSAGES):
            body = f"From: app@src.test\r\nSubject: m{i}\r\n\r\nmessage {i}\r\n".encode()
            s.sendmail("app@src.test", recipients(i), body)
            ids.append(i)
    return ids


def delivered(rx):
    """How many times each recipient arrived, over every MX host."""
    count = collections.Counter()
    for ip in (A, B, C):
        for env, _ in rx.messages(ip):
            for line in env:
                if line.startswith("RCPT TO "):
                    count[line[len("RCPT TO "):]] += 1
    return count



class ExactlyOnce(unittest.TestCase):
    def setUp(self):
        self.dns = dns()
        self.rx = Receivers([A, B, C], grey_seconds=3)
        self.f = None

    def tearDown(self):
        if self.f:
            self.f.cleanup()
        self.rx.stop()
        self.dns.stop()

    def assert_drained_and_restarts_clean(self):
        f = self.f
        self.assertTrue(wait_for(lambda: f.spool_entries("msg") == 0, 20), f.ctl("queue", "list")[1])
        self.assertEqual(f.spool_entries("body"), 0)
        self.assertEqual(f.spool_entries("sched"), 0)
        self.assertEqual(f.stop(), 0)
        f.start()
        self.assertTrue(f.wait_log(r"spool\.recovered messages=0 "), f.log())
        self.assertEqual(f.stop(), 0)
        for bad in ("sched_orphan", "body_missing", "delivery.spool_update"):
            self.assertNotIn(bad, f.log())

    def test_deferred_again_and_again_then_delivered_exactly_once(self):
        self.f = Ferry(listeners=RELAY, extra=config(self.dns, self.rx)).start()
        submit_all(self.f.port("relay"))
        self.assertTrue(wait_for(lambda: len(delivered(self.rx)) == len(ALL_RCPTS), 90),
                        f"{len(delivered(self.rx))} of {len(ALL_RCPTS)} recipients arrived")
        time.sleep(2)  # a second copy would come within a retry or two
        got = delivered(self.rx)
        twice = {r: n for r, n in got.items() if n != 1}
        self.assertEqual(twice, {}, "recipients delivered more than once")
        self.assertEqual(set(got), set(ALL_RCPTS))
        # And ferryd says so once per recipient, after several deferrals.
        log = self.f.log()
        for r in ALL_RCPTS:
            self.assertEqual(len(re.findall(rf" delivered .*rcpt={re.escape(r)} ", log)), 1, r)
        self.assertRegex(log, r"deferred .*rcpt=grey\d+@a\.test .*451 4\.7\.1")
        self.assertRegex(log, r"deferred .*rcpt=greydata\d+@b\.test .*451 4\.3\.0")
        self.assert_drained_and_restarts_clean()

    def test_kill_9_in_the_middle_loses_nothing(self):
        self.f = Ferry(listeners=RELAY, extra=config(self.dns, self.rx)).start()
        submit_all(self.f.port("relay"))
        # Kill while deliveries and deferrals are going on.
        wait_for(lambda: len(delivered(self.rx)) >= len(ALL_RCPTS) // 3, 60)
        self.f.kill()
        # What a second delivery is allowed for: recipients the MX hosts had
        # taken at the kill whose "delivered" had not been committed yet (a
        # transaction in flight, or its outcome waiting for the group commit).
        at_kill = delivered(self.rx)
        committed = {json.loads(v)["rcpt"] for v in self.f.spool_dump("log").values()
                     if json.loads(v)["event"] == "delivered"}
        in_flight = set(at_kill) - committed
        self.f.start()
        self.assertTrue(wait_for(lambda: len(delivered(self.rx)) == len(ALL_RCPTS), 90),
                        f"{len(delivered(self.rx))} of {len(ALL_RCPTS)} recipients arrived after the restart")
        time.sleep(2)
        got = delivered(self.rx)
        self.assertEqual(set(got), set(ALL_RCPTS))
        twice = {r: n for r, n in got.items() if n > 1}
        self.assertLessEqual(set(twice), in_flight, f"in flight at the kill: {sorted(in_flight)}")
        self.assertTrue(all(n == 2 for n in twice.values()), twice)
        self.assertTrue(committed, "the kill came before any outcome was committed")
        self.assert_drained_and_restarts_clean()


class CommitAfterHangUp(unittest.TestCase):
    def setUp(self):
        self.dns = dns()
        self.rx = Receivers([A], grey_seconds=0)
        self.f = Ferry(listeners=RELAY, extra=config(self.dns, self.rx)).start()

    def tearDown(self):
        self.f.cleanup()
        self.rx.stop()
        self.dns.stop()

    def test_client_that_closes_after_the_dot_still_gets_its_mail_delivered(self):
        # Scripts often send the final dot and close at once, not waiting
        # for the 250: the message is committed all the same, so it is owed.
        for i in range(10):
            s = socket.create_connection(("127.0.0.1", self.f.port("relay")), timeout=10)
            s.sendall(b"EHLO script\r\nMAIL FROM:<app@src.test>\r\n"
                      b"RCPT TO:<hangup%d@a.test>\r\nDATA\r\n" % i)
            buf = b""
            while b"354" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            s.sendall(b"Subject: hang up %d\r\n\r\nbye\r\n.\r\n" % i)
            s.close()
        self.assertTrue(wait_for(lambda: len(self.rx.messages(A)) == 10, 30),
                        f"{len(self.rx.messages(A))} of 10 delivered\n" + self.f.log())
        self.assertEqual(len(re.findall(r" received id=", self.f.log())), 10)
        self.assertTrue(wait_for(lambda: self.f.spool_entries("msg") == 0, 10))


class Flush(unittest.TestCase):
    def setUp(self):
        self.dns = dns()
        self.rx = Receivers([A])
        self.f = Ferry(listeners=RELAY, extra=config(self.dns, self.rx, backoff="1h")).start()

    def tearDown(self):
        self.f.cleanup()
        self.rx.stop()
        self.dns.stop()

    def test_flush_counts_what_it_releases(self):
        with smtplib.SMTP("127.0.0.1", self.f.port("relay"), timeout=10) as s:
            for i in range(5):
                s.sendmail("app@src.test", [f"x{i}@dead.test"], b"Subject: dead\r\n\r\nx\r\n")
        # Nothing listens on the MX: each is deferred for an hour (and the
        # destination ends up suspended after repeated connection failures).
        self.assertTrue(wait_for(lambda: len(re.findall(r"deferred .*@dead\.test", self.f.log())) >= 5, 30),
                        self.f.log())
        time.sleep(0.5)  # the deferrals' retry times reach the spool
        rc, out, err = self.f.ctl("queue", "flush", "--domain", "dead.test", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["flushed"], 5, out)
        # Each gets another try at once (those behind the suspension too).
        def tried_again():
            log = self.f.log()
            return all(len(re.findall(rf"deferred .*rcpt=x{i}@dead\.test ", log)) >= 2 for i in range(5))
        self.assertTrue(wait_for(tried_again, 30), self.f.log())
        self.assertEqual(self.f.spool_entries("msg"), 5)
        self.assertEqual(self.f.spool_entries("sched"), 5)


if __name__ == "__main__":
    main()
