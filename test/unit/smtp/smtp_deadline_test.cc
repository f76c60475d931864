// lib/smtp: session deadlines. Times are plain numbers (a fake clock): a
// trickling client must run out of time exactly as the limits say.
#include <doctest/doctest.h>

#include "smtp/smtp_deadline.h"

using namespace ferry::smtp;

namespace {
constexpr int64_t t0 = 1'000'000;
DeadlineLimits limits() {
  DeadlineLimits l;
  l.command_ms = 2'000;
  l.data_ms = 10'000;
  l.min_data_rate = 500;
  l.handshake_ms = 3'000;
  l.session_ms = 60'000;
  return l;
}
}  // namespace

TEST_CASE("deadlines: a command line has command_ms in all, however its bytes trickle") {
  SessionDeadlines d(limits(), t0);
  CHECK(d.next().at == t0 + 2'000);
  CHECK(d.next().which == Deadline::command);
  // Partial bytes call nothing; content_received outside DATA is ignored.
  d.content_received(t0 + 1'500, 1);
  CHECK(d.next().at == t0 + 2'000);
  CHECK(d.remaining(t0 + 1'500) == 500);
  CHECK(d.remaining(t0 + 2'000) == 0);
  CHECK(d.remaining(t0 + 9'000) == 0);
}

TEST_CASE("deadlines: each complete line restarts the command deadline, not the handshake") {
  SessionDeadlines d(limits(), t0);
  d.expect_command(t0 + 1'900);  // EHLO arrived just in time
  CHECK(d.next().at == t0 + 3'000);
  CHECK(d.next().which == Deadline::handshake);
  d.end_handshake();  // MAIL accepted
  CHECK(d.next().at == t0 + 3'900);
  CHECK(d.next().which == Deadline::command);
}

TEST_CASE("deadlines: content earns time at min_data_rate, capped at data_ms") {
  SessionDeadlines d(limits(), t0);
  d.end_handshake();
  d.expect_content(t0);
  CHECK(d.next().at == t0 + 10'000);
  CHECK(d.next().which == Deadline::data);
  // A fast client stays at the cap: now + data_ms, as an idle timeout.
  d.content_received(t0 + 100, 1 << 20);
  CHECK(d.next().at == t0 + 10'100);
  // A trickler: one byte every 2 s earns 2 ms each; it runs out after
  // about data_ms whatever it does.
  int64_t now = t0 + 100;
  int reads = 0;
  while (d.remaining(now) > 0 && reads < 100) {
    now += 2'000;
    if (d.remaining(now) > 0) d.content_received(now, 1);
    ++reads;
  }
  CHECK(reads == 6);  // 10.1 s budget, 2 s per byte minus 2 ms earned
  CHECK(d.remaining(now) == 0);
}

TEST_CASE("deadlines: bytes above the rate keep a slow but steady transfer alive") {
  auto l = limits();
  l.session_ms = 0;
  SessionDeadlines d(l, t0);
  d.end_handshake();
  d.expect_content(t0);
  int64_t now = t0;
  for (int i = 0; i < 1000; ++i) {  // 1000 s at 600 bytes/s
    now += 1'000;
    REQUIRE(d.remaining(now) > 0);
    d.content_received(now, 600);
  }
  CHECK(d.next().which == Deadline::data);
  CHECK(d.remaining(now) == 10'000);
  // With the session cap, the same transfer ends at 60 s.
  SessionDeadlines capped(limits(), t0);
  capped.end_handshake();
  capped.expect_content(t0 + 55'000);
  capped.content_received(t0 + 55'000, 1 << 20);
  CHECK(capped.next().which == Deadline::session);
  CHECK(capped.remaining(t0 + 55'000) == 5'000);
}

TEST_CASE("deadlines: min_data_rate 0 makes every read a full refill (idle timeout)") {
  auto l = limits();
  l.min_data_rate = 0;
  l.session_ms = 0;
  SessionDeadlines d(l, t0);
  d.end_handshake();
  d.expect_content(t0);
  d.content_received(t0 + 9'000, 1);
  CHECK(d.next().at == t0 + 19'000);
  d.expect_command(t0 + 9'500);
  CHECK(d.next().at == t0 + 11'500);
}

TEST_CASE("deadlines: session cap and saturation") {
  auto l = limits();
  l.handshake_ms = INT64_MAX;  // absurd but accepted: never overflows
  l.session_ms = 0;            // no cap
  SessionDeadlines d(l, t0);
  d.expect_content(t0);
  d.content_received(t0, UINT64_MAX);
  CHECK(d.next().at == t0 + 10'000);
  d.expect_command(t0);
  CHECK(d.next().at == t0 + 2'000);

  SessionDeadlines capped(limits(), t0);
  capped.end_handshake();
  capped.expect_command(t0 + 59'000);
  CHECK(capped.next().at == t0 + 60'000);
  CHECK(capped.next().which == Deadline::session);
  CHECK(to_string(Deadline::session) == "session");
}
