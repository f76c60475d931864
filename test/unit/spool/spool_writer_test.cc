// The writer thread: many submitters, every request completes exactly once,
// and concurrent submissions share commits (group commit).
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "spool/spool_writer.h"

using namespace ferry;
using namespace ferry::spool;

TEST_CASE("writer: every request completes once; batches form under concurrency") {
  auto spool = make_mem_spool(1ull << 30);
  std::atomic<int> wakes{0};
  SpoolWriter w(*spool, [&] { wakes++; });
  constexpr int kThreads = 8, kPer = 250;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        auto r = std::make_unique<WriteRequest>();
        smtp::Envelope e;
        e.id = "T" + std::to_string(t) + "-" + std::to_string(i);
        e.rcpts.push_back({"a@b.c", "", 0, smtp::RcptState::pending, 0, 0, ""});
        r->op = InsertMessage{e, "body", {}};
        w.submit(std::move(r));
      }
    });
  }
  for (auto& t : ts) t.join();
  w.stop();
  auto done = w.take_completed();
  CHECK(done.size() == size_t(kThreads * kPer));
  for (auto& r : done) CHECK(r->result.ok());
  CHECK(*spool->message_count() == uint64_t(kThreads * kPer));
  auto st = w.stats();
  CHECK(st.requests == uint64_t(kThreads * kPer));
  CHECK(st.batches <= st.requests);
  CHECK(wakes.load() == int(st.batches));
}

TEST_CASE("writer: stop with nothing submitted returns") {
  auto spool = make_mem_spool(1024);
  SpoolWriter w(*spool, [] {});
  w.stop();
  w.stop();  // idempotent
  CHECK(w.take_completed().empty());
}
