// The spool writer thread: the only writer of the spool. It takes every
// request queued since its last commit, applies them in one transaction
// (group commit: one fsync for the whole batch), then calls `wake`, which
// must only signal the event loop (uv_async_send); the loop then calls
// take_completed() and answers each waiting session. Nothing here knows
// about libuv: the wake-up is injected.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "spool/spool.h"

namespace ferry::spool {

class SpoolWriter {
 public:
  SpoolWriter(Spool& spool, std::function<void()> wake);
  ~SpoolWriter();
  SpoolWriter(const SpoolWriter&) = delete;
  SpoolWriter& operator=(const SpoolWriter&) = delete;

  void submit(std::unique_ptr<WriteRequest> req);  // any thread
  // Requests whose batch has finished, in submission order.
  std::vector<std::unique_ptr<WriteRequest>> take_completed();
  // Commits everything already submitted, then joins the thread.
  void stop();

  // Histogram bucket bounds (upper, inclusive) for /metrics.
  static constexpr std::array<double, 10> kCommitBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                            0.025,  0.05,  0.1,    0.25,  1.0};
  static constexpr std::array<double, 8> kBatchBuckets = {1, 2, 5, 10, 20, 50, 100, 500};
  struct Stats {
    uint64_t batches = 0;
    uint64_t requests = 0;
    uint64_t max_batch = 0;
    uint64_t commit_us_total = 0;
    std::array<uint64_t, kCommitBuckets.size()> commit_le{};  // cumulative at render time
    std::array<uint64_t, kBatchBuckets.size()> batch_le{};
  };
  Stats stats() const;

 private:
  void run();

  Spool& spool_;
  std::function<void()> wake_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<WriteRequest>> pending_;
  std::vector<std::unique_ptr<WriteRequest>> completed_;
  Stats stats_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ferry::spool
