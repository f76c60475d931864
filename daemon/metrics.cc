// See metrics.h.
#include "metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>

#include <cstring>

#include <fmt/format.h>

#include "util/log.h"

namespace ferry {
namespace {

void counter(std::string& out, const char* name, const char* help, uint64_t v, const char* labels = "") {
  out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{}{} {}\n", name, help, name, name, labels, v);
}
void gauge(std::string& out, const char* name, const char* help, uint64_t v) {
  out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n{} {}\n", name, help, name, name, v);
}
template <size_t N>
void histogram(std::string& out, const char* name, const char* help, const std::array<double, N>& bounds,
               const std::array<uint64_t, N>& per_bucket, uint64_t count, double sum) {
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cum = 0;
  for (size_t i = 0; i < N; ++i) {
    cum += per_bucket[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds[i], cum);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count, name, sum, name, count);
}

}  // namespace

std::string render_metrics(const Metrics& m) {
  auto v = [](const Metrics::C& c) { return c.load(std::memory_order_relaxed); };
  std::string out;
  counter(out, "ferry_connections_total", "Client connections accepted.", v(m.connections));
  gauge(out, "ferry_sessions_open", "Client sessions open now.", v(m.sessions_open));
  counter(out, "ferry_messages_received_total", "Messages accepted (250 after the spool commit).", v(m.received));
  counter(out, "ferry_messages_rejected_total", "Messages or recipients refused.", v(m.rejected));
  out += "# HELP ferry_deliveries_total Recipient outcomes.\n# TYPE ferry_deliveries_total counter\n";
  out += fmt::format("ferry_deliveries_total{{result=\"delivered\"}} {}\n", v(m.delivered));
  out += fmt::format("ferry_deliveries_total{{result=\"deferred\"}} {}\n", v(m.deferred));
  out += fmt::format("ferry_deliveries_total{{result=\"bounced\"}} {}\n", v(m.bounced));
  out += fmt::format("ferry_deliveries_total{{result=\"expired\"}} {}\n", v(m.expired));
  gauge(out, "ferry_queue_messages", "Messages in the spool.", v(m.queue_messages));
  gauge(out, "ferry_queue_oldest_age_seconds", "Age of the oldest queued message.", v(m.queue_oldest_age_s));
  counter(out, "ferry_dns_lookups_total", "MX/host resolutions for delivery.", v(m.dns_lookups));
  counter(out, "ferry_dns_failures_total", "Resolutions that failed (transient or NXDOMAIN).", v(m.dns_failures));
  out += "# HELP ferry_tls_handshakes_total Completed TLS handshakes.\n# TYPE ferry_tls_handshakes_total counter\n";
  out += fmt::format("ferry_tls_handshakes_total{{direction=\"in\"}} {}\n", v(m.tls_in));
  out += fmt::format("ferry_tls_handshakes_total{{direction=\"out\"}} {}\n", v(m.tls_out));
  counter(out, "ferry_tls_fallbacks_total",
          "Outbound STARTTLS handshakes that failed under delivery.tls: may; the host was retried in plaintext.",
          v(m.tls_fallbacks));
  counter(out, "ferry_auth_failures_total", "Failed AUTH attempts.", v(m.auth_failures));
  out += "# HELP ferry_reloads_total Configuration reloads.\n# TYPE ferry_reloads_total counter\n";
  out += fmt::format("ferry_reloads_total{{result=\"ok\"}} {}\n", v(m.reloads_ok));
  out += fmt::format("ferry_reloads_total{{result=\"failed\"}} {}\n", v(m.reloads_failed));
  if (m.writer) {
    auto st = m.writer->stats();
    histogram(out, "ferry_spool_commit_seconds", "Spool transaction commit time (the fsync).",
              spool::SpoolWriter::kCommitBuckets, st.commit_le, st.batches, double(st.commit_us_total) / 1e6);
    histogram(out, "ferry_spool_commit_batch_size", "Writes carried by one spool commit (group commit).",
              spool::SpoolWriter::kBatchBuckets, st.batch_le, st.batches, double(st.requests));
  }
  return out;
}

namespace {

MHD_Result answer(void* cls, MHD_Connection* conn, const char* url, const char* method, const char*,
                  const char*, size_t*, void**) {
  auto* m = static_cast<const Metrics*>(cls);
  std::string body, type = "text/plain; charset=utf-8";
  unsigned status = MHD_HTTP_OK;
  if (std::strcmp(method, "GET") != 0 && std::strcmp(method, "HEAD") != 0) {
    status = MHD_HTTP_METHOD_NOT_ALLOWED;
    body = "method not allowed\n";
  } else if (std::strcmp(url, "/metrics") == 0) {
    body = render_metrics(*m);
    type = "text/plain; version=0.0.4; charset=utf-8";
  } else if (std::strcmp(url, "/healthz") == 0) {
    body = "ok\n";
  } else {
    status = MHD_HTTP_NOT_FOUND;
    body = "not found\n";
  }
  MHD_Response* r = MHD_create_response_from_buffer(body.size(), body.data(), MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "Content-Type", type.c_str());
  MHD_Result rc = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return rc;
}

}  // namespace

Expected<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& host, uint16_t port,
                                                              const Metrics& metrics) {
  std::unique_ptr<MetricsServer> s(new MetricsServer);
  s->metrics_ = &metrics;
  sockaddr_storage ss{};
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;
  if (host.find(':') != std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    if (inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1) return Error("metrics.address: bad address");
    flags |= MHD_USE_IPv6;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) return Error("metrics.address: bad address");
  }
  auto* d = MHD_start_daemon(flags, port, nullptr, nullptr, &answer, const_cast<Metrics*>(&metrics),
                             MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&ss),
                             MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_LIMIT, 64u,
                             MHD_OPTION_END);
  if (d == nullptr) return Error(Errc::io, fmt::format("cannot listen on metrics.address {}:{}", host, port));
  s->daemon_ = d;
  const MHD_DaemonInfo* info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  uint16_t bound = info ? info->port : port;
  s->bound_ = host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, bound) : fmt::format("{}:{}", host, bound);
  log::info("metrics.listening", {{"address", s->bound_}});
  return s;
}

MetricsServer::~MetricsServer() {
  if (daemon_) MHD_stop_daemon(static_cast<MHD_Daemon*>(daemon_));
}

}  // namespace ferry
