// See sched_tls_fallback.h.
#include "sched/sched_tls_fallback.h"

#include <algorithm>

namespace ferry::sched {

void TlsFallbackMemory::remember(const std::string& host, int64_t now_ms, int64_t ttl_ms) {
  if (ttl_ms <= 0) return;
  auto it = until_.find(host);
  if (it == until_.end() && until_.size() >= kMaxHosts) {
    drop_expired(now_ms);
    if (until_.size() >= kMaxHosts) {
      // Still full of live entries: the one that would expire first goes
      // (a linear scan, but only on this rare path).
      auto first = std::min_element(until_.begin(), until_.end(), [](const auto& a, const auto& b) {
        return a.second < b.second;
      });
      until_.erase(first);
    }
  }
  until_[host] = now_ms + ttl_ms;
}

bool TlsFallbackMemory::plaintext(const std::string& host, int64_t now_ms) {
  auto it = until_.find(host);
  if (it == until_.end()) return false;
  if (it->second > now_ms) return true;
  until_.erase(it);  // expired: try STARTTLS again
  return false;
}

void TlsFallbackMemory::drop_expired(int64_t now_ms) {
  for (auto it = until_.begin(); it != until_.end();)
    it = it->second <= now_ms ? until_.erase(it) : std::next(it);
}

}  // namespace ferry::sched
