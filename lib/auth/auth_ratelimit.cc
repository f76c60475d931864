// See auth_ratelimit.h.
#include "auth/auth_ratelimit.h"

#include <algorithm>

namespace ferry::auth {

double RateLimiter::refill(const Bucket& b, int64_t now_ms) const {
  double rate = double(capacity_) / double(std::max<int64_t>(1, interval_ms_));
  return std::min(double(capacity_), b.tokens + rate * double(std::max<int64_t>(0, now_ms - b.last_ms)));
}

bool RateLimiter::take(const std::string& key, uint64_t cost, int64_t now_ms) {
  if (capacity_ == 0) return true;
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) prune(now_ms);
    if (buckets_.size() >= max_keys_) buckets_.erase(buckets_.begin());  // hard cap
    it = buckets_.emplace(key, Bucket{double(capacity_), now_ms}).first;
  }
  Bucket& b = it->second;
  b.tokens = refill(b, now_ms);
  b.last_ms = now_ms;
  if (b.tokens + 1e-9 < double(cost)) return false;
  b.tokens -= double(cost);
  return true;
}

int64_t RateLimiter::wait_ms(const std::string& key, uint64_t cost, int64_t now_ms) const {
  auto it = buckets_.find(key);
  if (capacity_ == 0 || it == buckets_.end()) return 0;
  double have = refill(it->second, now_ms);
  if (have >= double(cost)) return 0;
  double rate = double(capacity_) / double(std::max<int64_t>(1, interval_ms_));
  return int64_t((double(cost) - have) / rate) + 1;
}

void RateLimiter::prune(int64_t now_ms) {
  for (auto it = buckets_.begin(); it != buckets_.end();)
    it = refill(it->second, now_ms) >= double(capacity_) ? buckets_.erase(it) : std::next(it);
}

void AuthLockout::failure(const std::string& address, int64_t now_ms) {
  if (max_failures_ == 0) return;
  if (entries_.size() > 100'000) prune(now_ms);
  Entry& e = entries_[address];
  if (now_ms - e.window_start > window_ms_) {
    e.window_start = now_ms;
    e.failures = 0;
  }
  if (++e.failures >= max_failures_) e.locked_until = now_ms + lockout_ms_;
}

int64_t AuthLockout::locked_ms(const std::string& address, int64_t now_ms) const {
  auto it = entries_.find(address);
  if (it == entries_.end()) return 0;
  return std::max<int64_t>(0, it->second.locked_until - now_ms);
}

void AuthLockout::prune(int64_t now_ms) {
  for (auto it = entries_.begin(); it != entries_.end();)
    it = (it->second.locked_until <= now_ms && now_ms - it->second.window_start > window_ms_) ? entries_.erase(it)
                                                                                             : std::next(it);
}

}  // namespace ferry::auth
