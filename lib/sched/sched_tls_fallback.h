// Which MX hosts get plaintext for a while because their STARTTLS is broken
// (delivery.tls: may only). Pure: time is injected, no I/O; the delivery job
// asks before each new connection and reports each failed handshake.
// Like KumoMTA's remember_broken_tls: without the memory every message to
// such a host would first burn a connection on the failing handshake.
// Bounded: at most kMaxHosts entries, the one expiring first makes room.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace ferry::sched {

class TlsFallbackMemory {
 public:
  static constexpr size_t kMaxHosts = 10'000;

  // host: the MX host (with port) whose handshake failed at now_ms; it is
  // sent plaintext until now_ms + ttl_ms. ttl_ms <= 0 remembers nothing.
  void remember(const std::string& host, int64_t now_ms, int64_t ttl_ms);
  // True while host is remembered; an expired entry is dropped.
  bool plaintext(const std::string& host, int64_t now_ms);
  size_t size() const { return until_.size(); }

 private:
  void drop_expired(int64_t now_ms);
  std::map<std::string, int64_t> until_;  // host → expiry (ms)
};

}  // namespace ferry::sched
