// See net_listener.h.
#include "net/net_listener.h"

#include <fmt/format.h>

#include "net/net_connection.h"
#include "util/log.h"

namespace ferry::net {

Expected<std::unique_ptr<Listener>> Listener::bind(uv_loop_t* loop, const std::string& host,
                                                   uint16_t port, OnAccept on_accept) {
  std::unique_ptr<Listener> l(new Listener);
  l->on_accept_ = std::move(on_accept);
  sockaddr_storage ss{};
  bool v6 = host.find(':') != std::string::npos;
  int rc = v6 ? uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&ss))
              : uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&ss));
  if (rc) return Error(Errc::invalid, fmt::format("bad address {}: {}", host, uv_strerror(rc)));
  l->tcp_ = new uv_tcp_t;
  uv_tcp_init(loop, l->tcp_);
  l->tcp_->data = l.get();
  auto fail = [&](const char* what, int err) {
    return Error(Errc::io, fmt::format("{} {}: {}", what, v6 ? fmt::format("[{}]:{}", host, port)
                                                             : fmt::format("{}:{}", host, port),
                                       uv_strerror(err)));
  };
  // An IPv6 listener is IPv6 only: "[::]:25" and "0.0.0.0:25" can coexist.
  rc = uv_tcp_bind(l->tcp_, reinterpret_cast<sockaddr*>(&ss), v6 ? UV_TCP_IPV6ONLY : 0);
  if (rc == 0)
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(l->tcp_), 1024, [](uv_stream_t* s, int status) {
      auto* self = static_cast<Listener*>(s->data);
      if (self == nullptr) return;
      if (status < 0) {
        log::warn("listener.accept_error", {{"error", uv_strerror(status)}});
        return;
      }
      self->on_accept_(s);
    });
  if (rc) return fail("cannot listen on", rc);
  int len = sizeof ss;
  uv_tcp_getsockname(l->tcp_, reinterpret_cast<sockaddr*>(&ss), &len);
  std::string ip;
  uint16_t bound_port = 0;
  addr_to_text(reinterpret_cast<sockaddr*>(&ss), ip, bound_port);
  l->bound_ = v6 ? fmt::format("[{}]:{}", ip, bound_port) : fmt::format("{}:{}", ip, bound_port);
  return l;
}

Listener::~Listener() {
  if (tcp_) {
    tcp_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(tcp_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  }
}

}  // namespace ferry::net
