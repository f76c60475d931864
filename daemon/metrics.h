// Counters and gauges for GET /metrics (Prometheus text format 0.0.4).
// Written on the event loop, read by the HTTP thread: every value is an
// atomic with relaxed ordering (each is independent; a scrape needs no
// consistent cut across them).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "spool/spool_writer.h"
#include "util/expected.h"

namespace ferry {

struct Metrics {
  using C = std::atomic<uint64_t>;
  C connections{0}, sessions_open{0};
  C received{0}, rejected{0};
  C delivered{0}, deferred{0}, bounced{0}, expired{0};
  C dns_lookups{0}, dns_failures{0};
  C tls_in{0}, tls_out{0};
  C tls_fallbacks{0};  // delivery.tls: may handshakes that failed and were retried in plaintext
  C auth_failures{0};
  C reloads_ok{0}, reloads_failed{0};
  C queue_messages{0}, queue_oldest_age_s{0};
  const spool::SpoolWriter* writer = nullptr;  // commit latency and batch histograms
};

std::string render_metrics(const Metrics& m);

// The HTTP endpoint: libmicrohttpd with its own thread (Debian's
// libmicrohttpd; a hand-written HTTP server is where parsers go wrong).
class MetricsServer {
 public:
  static Expected<std::unique_ptr<MetricsServer>> start(const std::string& host, uint16_t port,
                                                        const Metrics& metrics);
  ~MetricsServer();
  const std::string& bound_address() const { return bound_; }

 private:
  MetricsServer() = default;
  void* daemon_ = nullptr;  // struct MHD_Daemon*
  const Metrics* metrics_ = nullptr;
  std::string bound_;
};

}  // namespace ferry
