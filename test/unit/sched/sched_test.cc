// lib/sched: windows, health, suspension, retry timing, with a fake clock.
#include <doctest/doctest.h>

#include "sched/sched.h"

using namespace ferry::sched;

namespace {
Policy policy() {
  Policy p;
  p.initial_window = 2;
  p.max_window = 4;
  p.failures_to_suspend = 2;
  p.suspend_ms = 1000;
  p.min_backoff_ms = 100;
  p.max_backoff_ms = 1000;
  p.max_lifetime_ms = 10'000;
  return p;
}
}  // namespace

TEST_CASE("jobs start when ready, within the window") {
  Scheduler s(policy());
  for (int i = 0; i < 5; ++i) s.enqueue("m" + std::to_string(i), "a.example", {0}, 100);
  s.enqueue("later", "a.example", {0}, 500);
  auto d = s.poll(50);
  CHECK(d.start.empty());
  CHECK(*d.wake_at == 100);
  d = s.poll(100);
  REQUIRE(d.start.size() == 2);  // initial window
  CHECK(d.start[0].msg_id == "m0");
  CHECK(*d.wake_at == 500);
  CHECK(s.poll(100).start.empty());  // window full
  s.finished(d.start[0], false, 110);  // success grows the window to 3
  auto d2 = s.poll(110);
  CHECK(d2.start.size() == 2);  // 1 slot freed + 1 from growth
  CHECK(s.active() == 3);
}

TEST_CASE("destinations do not block each other") {
  Scheduler s(policy());
  for (int i = 0; i < 10; ++i) s.enqueue("a" + std::to_string(i), "slow.example", {0}, 0);
  s.enqueue("b0", "fast.example", {0}, 0);
  auto d = s.poll(0);
  int fast = 0;
  for (const auto& j : d.start) fast += j.destination == "fast.example";
  CHECK(fast == 1);
  CHECK(d.start.size() == 3);
}

TEST_CASE("connection failures shrink, suspend, hand back and probe") {
  Scheduler s(policy());
  for (int i = 0; i < 6; ++i) s.enqueue("m" + std::to_string(i), "dead.example", {0, 1}, 0);
  auto d = s.poll(0);
  REQUIRE(d.start.size() == 2);
  s.finished(d.start[0], true, 10);  // window 2 → 1, failures 1
  CHECK(s.poll(10).start.empty());   // one still active, window 1
  s.finished(d.start[1], true, 20);  // failures 2 → suspended until 1020
  auto d2 = s.poll(20);
  CHECK(d2.start.empty());
  CHECK(d2.defer.size() == 4);  // waiting jobs handed back, not stuck
  CHECK(d2.defer[0].rcpts.size() == 2);
  // New work while suspended is handed back too.
  s.enqueue("new", "dead.example", {0}, 30);
  auto d3 = s.poll(30);
  CHECK(d3.defer.size() == 1);
  // After the suspension: one probe at a time.
  s.enqueue("p1", "dead.example", {0}, 1100);
  s.enqueue("p2", "dead.example", {0}, 1100);
  auto d4 = s.poll(1100);
  REQUIRE(d4.start.size() == 1);
  s.finished(d4.start[0], false, 1200);  // probe succeeded: healthy again
  auto d5 = s.poll(1200);
  CHECK(d5.start.size() == 1);
  CHECK(s.destinations().at("dead.example").failures == 0);
}

TEST_CASE("a failed probe suspends again at once") {
  Scheduler s(policy());
  s.enqueue("a", "d", {0}, 0);
  s.enqueue("b", "d", {0}, 0);
  auto d = s.poll(0);
  s.finished(d.start[0], true, 0);
  s.finished(d.start[1], true, 0);
  s.enqueue("c", "d", {0}, 2000);
  auto p = s.poll(2000);
  REQUIRE(p.start.size() == 1);
  s.finished(p.start[0], true, 2000);
  CHECK(s.destinations().at("d").suspended_until == 3000);
}

TEST_CASE("retry timing: clamped backoff, jitter, lifetime") {
  Policy p = policy();
  CHECK(next_attempt(0, 10, p, 0) == 110);      // age 10 → min 100
  CHECK(next_attempt(0, 500, p, 0) == 1000);    // age 500
  CHECK(next_attempt(0, 5000, p, 0) == 6000);   // clamped at max 1000
  int64_t j = next_attempt(0, 5000, p, 12345);
  CHECK(j >= 6000);
  CHECK(j <= 6100);
  CHECK(next_attempt(0, 9500, p, 0) == 10'000);  // never past the lifetime
  CHECK_FALSE(expired(0, 9999, p));
  CHECK(expired(0, 10'000, p));
}

TEST_CASE("a job carries its tag; a released job frees its slot without touching health") {
  Scheduler s(policy());
  s.enqueue("m", "d", {0}, 0, 7);
  auto d = s.poll(0);
  REQUIRE(d.start.size() == 1);
  CHECK(d.start[0].tag == 7);
  s.finished(d.start[0], true, 0);  // one connection failure on record
  s.enqueue("n", "d", {0}, 0, 8);
  auto d2 = s.poll(0);
  REQUIRE(d2.start.size() == 1);
  CHECK(s.destinations().at("d").active == 1);
  s.release(d2.start[0]);
  auto st = s.destinations().at("d");
  CHECK(st.active == 0);
  CHECK(st.failures == 1);  // a success would have reset it
  CHECK(s.active() == 0);
}
