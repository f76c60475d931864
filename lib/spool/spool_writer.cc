// See spool_writer.h. The batch is whatever arrived while the previous
// commit was running: no timer, no artificial delay. Under load, fsync time
// itself gathers the batch; with one client, latency is one commit.
#include "spool/spool_writer.h"

#include <chrono>

namespace ferry::spool {

SpoolWriter::SpoolWriter(Spool& spool, std::function<void()> wake)
    : spool_(spool), wake_(std::move(wake)), thread_([this] { run(); }) {}

SpoolWriter::~SpoolWriter() { stop(); }

void SpoolWriter::submit(std::unique_ptr<WriteRequest> req) {
  {
    std::lock_guard lock(mu_);
    pending_.push_back(std::move(req));
  }
  cv_.notify_one();
}

std::vector<std::unique_ptr<WriteRequest>> SpoolWriter::take_completed() {
  std::lock_guard lock(mu_);
  return std::exchange(completed_, {});
}

void SpoolWriter::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

SpoolWriter::Stats SpoolWriter::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void SpoolWriter::run() {
  std::vector<std::unique_ptr<WriteRequest>> batch;
  std::vector<WriteRequest*> ptrs;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, nothing left
      batch.swap(pending_);
    }
    ptrs.clear();
    for (auto& r : batch) ptrs.push_back(r.get());
    auto t0 = std::chrono::steady_clock::now();
    spool_.apply(ptrs);
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - t0)
                  .count();
    {
      std::lock_guard lock(mu_);
      stats_.batches++;
      stats_.requests += batch.size();
      stats_.max_batch = std::max<uint64_t>(stats_.max_batch, batch.size());
      stats_.commit_us_total += uint64_t(us);
      for (size_t i = 0; i < kCommitBuckets.size(); ++i)
        if (double(us) / 1e6 <= kCommitBuckets[i]) {
          stats_.commit_le[i]++;
          break;
        }
      for (size_t i = 0; i < kBatchBuckets.size(); ++i)
        if (double(batch.size()) <= kBatchBuckets[i]) {
          stats_.batch_le[i]++;
          break;
        }
      for (auto& r : batch) completed_.push_back(std::move(r));
    }
    batch.clear();
    wake_();
  }
}

}  // namespace ferry::spool
