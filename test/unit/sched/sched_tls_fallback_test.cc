// lib/sched TlsFallbackMemory: which MX hosts get plaintext, for how long,
// and that the memory stays bounded. Time is a plain number (fake clock).
#include <doctest/doctest.h>

#include <string>

#include "sched/sched_tls_fallback.h"

using ferry::sched::TlsFallbackMemory;

TEST_CASE("a remembered host gets plaintext until its entry expires") {
  struct Row {
    const char* name;
    int64_t ttl, ask_at;
    bool plaintext;
  };
  const Row rows[] = {
      {"just remembered", 1000, 100, true},
      {"one ms before expiry", 1000, 1099, true},
      {"at expiry", 1000, 1100, false},
      {"long after", 1000, 50'000, false},
      {"ttl 0 remembers nothing", 0, 100, false},
      {"negative ttl remembers nothing", -5, 100, false},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    TlsFallbackMemory m;
    m.remember("mx.a.test:25", 100, r.ttl);
    CHECK(m.plaintext("mx.a.test:25", r.ask_at) == r.plaintext);
    CHECK_FALSE(m.plaintext("mx.b.test:25", r.ask_at));  // only that host
  }
}

TEST_CASE("an expired entry is dropped; remembering again extends it") {
  TlsFallbackMemory m;
  m.remember("mx:25", 0, 10);
  CHECK(m.size() == 1);
  CHECK_FALSE(m.plaintext("mx:25", 10));
  CHECK(m.size() == 0);
  m.remember("mx:25", 20, 10);
  m.remember("mx:25", 25, 10);  // a second failure restarts the clock
  CHECK(m.plaintext("mx:25", 34));
  CHECK_FALSE(m.plaintext("mx:25", 35));
}

TEST_CASE("the memory is bounded: expired entries go first, then the one expiring first") {
  TlsFallbackMemory m;
  for (size_t i = 0; i < TlsFallbackMemory::kMaxHosts; ++i)
    m.remember("h" + std::to_string(i), int64_t(i), i == 0 ? 1 : 1000);
  CHECK(m.size() == TlsFallbackMemory::kMaxHosts);
  // At t=10, h0 (expired at 1) makes room.
  m.remember("new1", 10, 1000);
  CHECK(m.size() == TlsFallbackMemory::kMaxHosts);
  CHECK_FALSE(m.plaintext("h0", 10));
  CHECK(m.plaintext("new1", 10));
  // Nothing expired: h1 (expires 1001, the earliest) is evicted.
  m.remember("new2", 11, 1000);
  CHECK(m.size() == TlsFallbackMemory::kMaxHosts);
  CHECK_FALSE(m.plaintext("h1", 11));
  CHECK(m.plaintext("h2", 11));
  CHECK(m.plaintext("new2", 11));
}
