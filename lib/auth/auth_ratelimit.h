// Token-bucket rate limits keyed by user or client address, and the
// AUTH-failure lockout. Pure: time is passed in, nothing here reads a clock.
// Memory is bounded: buckets that have refilled completely carry no
// information and are dropped by prune(), and the table has a hard cap
// (the oldest entries go first) so that a flood of addresses cannot grow it.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

namespace ferry::auth {

class RateLimiter {
 public:
  // capacity tokens per interval_ms, refilled continuously. capacity 0 = no limit.
  RateLimiter(uint64_t capacity, int64_t interval_ms, size_t max_keys = 100'000)
      : capacity_(capacity), interval_ms_(interval_ms), max_keys_(max_keys) {}

  // Takes `cost` tokens for key; false (and nothing taken) when not enough.
  bool take(const std::string& key, uint64_t cost, int64_t now_ms);
  // Milliseconds until `cost` tokens are available again.
  int64_t wait_ms(const std::string& key, uint64_t cost, int64_t now_ms) const;
  void prune(int64_t now_ms);
  size_t size() const { return buckets_.size(); }
  bool enabled() const { return capacity_ > 0; }

 private:
  struct Bucket {
    double tokens;
    int64_t last_ms;
  };
  double refill(const Bucket& b, int64_t now_ms) const;

  uint64_t capacity_;
  int64_t interval_ms_;
  size_t max_keys_;
  std::unordered_map<std::string, Bucket> buckets_;
};

// After `max_failures` failed AUTH attempts from one address within
// `window_ms`, the address is locked out for `lockout_ms`.
class AuthLockout {
 public:
  AuthLockout(uint64_t max_failures, int64_t window_ms, int64_t lockout_ms)
      : max_failures_(max_failures), window_ms_(window_ms), lockout_ms_(lockout_ms) {}
  void failure(const std::string& address, int64_t now_ms);
  void success(const std::string& address) { entries_.erase(address); }
  // Milliseconds left of a lockout, 0 when not locked.
  int64_t locked_ms(const std::string& address, int64_t now_ms) const;
  void prune(int64_t now_ms);

 private:
  struct Entry {
    uint64_t failures = 0;
    int64_t window_start = 0;
    int64_t locked_until = 0;
  };
  uint64_t max_failures_;
  int64_t window_ms_, lockout_ms_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace ferry::auth
