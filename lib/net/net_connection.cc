// See net_connection.h.
#include "net/net_connection.h"

#include <arpa/inet.h>
#include <openssl/err.h>

#include "net/net_tls_error.h"
#include "util/log.h"

namespace ferry::net {
namespace {

struct WriteReq {
  uv_write_t req;
  std::string data;
  Connection* conn;
};

}  // namespace

bool addr_to_text(const sockaddr* sa, std::string& ip, uint16_t& port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    port = ntohs(in6->sin6_port);
    // A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d; logs and
    // trusted_networks want the plain IPv4 form.
    std::string s = buf;
    if (s.rfind("::ffff:", 0) == 0 && s.find('.') != std::string::npos) {
      ip = s.substr(7);
      return true;
    }
  } else {
    return false;
  }
  ip = buf;
  return true;
}

std::unique_ptr<Connection> Connection::accept(uv_stream_t* server) {
  std::unique_ptr<Connection> c(new Connection);
  c->tcp_ = new uv_tcp_t;
  uv_tcp_init(server->loop, c->tcp_);
  c->tcp_->data = c.get();
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(c->tcp_)) != 0) {
    c->closing_ = true;
    c->tcp_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(c->tcp_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    c->tcp_ = nullptr;
    return nullptr;
  }
  // Replies are written whole; Nagle would only delay them behind ACKs.
  uv_tcp_nodelay(c->tcp_, 1);
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(c->tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    addr_to_text(reinterpret_cast<sockaddr*>(&ss), c->peer_ip_, c->peer_port_);
  len = sizeof ss;  // local port: which listener, for logs
  std::string ignored;
  if (uv_tcp_getsockname(c->tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    addr_to_text(reinterpret_cast<sockaddr*>(&ss), ignored, c->local_port_);
  return c;
}

namespace {
struct ConnectOp {
  uv_connect_t req;
  uv_tcp_t* tcp;
  uv_timer_t* timer;
  Connection::ConnectCallback cb;
  bool timed_out = false;
};
}  // namespace

void Connection::connect(uv_loop_t* loop, const std::string& ip, uint16_t port, uint64_t timeout_ms,
                         ConnectCallback cb) {
  sockaddr_storage ss{};
  bool v6 = ip.find(':') != std::string::npos;
  int rc = v6 ? uv_ip6_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in6*>(&ss))
              : uv_ip4_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in*>(&ss));
  auto* op = new ConnectOp{{}, new uv_tcp_t, new uv_timer_t, std::move(cb)};
  op->req.data = op;
  uv_tcp_init(loop, op->tcp);
  op->tcp->data = nullptr;
  uv_timer_init(loop, op->timer);
  op->timer->data = op;
  auto close_timer = [](ConnectOp* o) {
    uv_timer_stop(o->timer);
    uv_close(reinterpret_cast<uv_handle_t*>(o->timer), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  };
  if (rc == 0)
    rc = uv_tcp_connect(&op->req, op->tcp, reinterpret_cast<sockaddr*>(&ss), [](uv_connect_t* req, int status) {
      auto* o = static_cast<ConnectOp*>(req->data);
      uv_timer_stop(o->timer);
      uv_close(reinterpret_cast<uv_handle_t*>(o->timer), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      std::unique_ptr<ConnectOp> holder(o);
      if (status < 0) {
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(o->tcp)))  // the timeout closed it already
          uv_close(reinterpret_cast<uv_handle_t*>(o->tcp), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
        o->cb(nullptr, o->timed_out ? "connection timed out" : uv_strerror(status));
        return;
      }
      std::unique_ptr<Connection> c(new Connection);
      c->outbound_ = true;
      c->tcp_ = o->tcp;
      c->tcp_->data = c.get();
      uv_tcp_nodelay(c->tcp_, 1);
      sockaddr_storage peer{};
      int len = sizeof peer;
      if (uv_tcp_getpeername(c->tcp_, reinterpret_cast<sockaddr*>(&peer), &len) == 0)
        addr_to_text(reinterpret_cast<sockaddr*>(&peer), c->peer_ip_, c->peer_port_);
      o->cb(std::move(c), "");
    });
  if (rc != 0) {
    // Report asynchronously like every other outcome.
    close_timer(op);
    op->timer = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(op->tcp), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    auto* idle = new uv_timer_t;
    uv_timer_init(loop, idle);
    struct Later { ConnectCallback cb; std::string err; };
    idle->data = new Later{std::move(op->cb), uv_strerror(rc)};
    delete op;
    uv_timer_start(idle, [](uv_timer_t* t) {
      std::unique_ptr<Later> l(static_cast<Later*>(t->data));
      uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      l->cb(nullptr, l->err);
    }, 0, 0);
    return;
  }
  uv_timer_start(op->timer, [](uv_timer_t* t) {
    auto* o = static_cast<ConnectOp*>(t->data);
    o->timed_out = true;
    // Closing the handle cancels the connect; its callback then reports it.
    uv_close(reinterpret_cast<uv_handle_t*>(o->tcp), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  }, timeout_ms, 0);
}

Connection::~Connection() {
  if (ssl_) SSL_free(ssl_);  // frees both BIOs
  if (tcp_) {
    // Owner broke the contract (deleted before on_closed): detach safely.
    tcp_->data = nullptr;
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(tcp_)))
      uv_close(reinterpret_cast<uv_handle_t*>(tcp_),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  }
}

void Connection::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(h->data);
  *buf = uv_buf_init(self->read_buf_, sizeof self->read_buf_);
}

void Connection::on_read_cb(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(s->data);
  if (self == nullptr || self->closing_) return;
  if (n < 0) {
    std::string why = n != UV_EOF ? uv_strerror(int(n))
                      : self->outbound_ ? "server closed connection"  // we are the SMTP client
                                        : "client closed connection";
    if (self->ssl_ && !self->handshake_done_)  // the peer gave up on the handshake
      return self->close_tls_error("TLS handshake failed: connection closed by peer (" + why + ")");
    self->close(why);
    return;
  }
  if (n == 0) return;
  std::string_view data(buf->base, size_t(n));
  if (self->ssl_)
    self->handle_ciphertext(data);
  else if (self->handler_)
    self->handler_->on_read(data);
}

void Connection::start_reading() {
  if (reading_ || closing_ || !tcp_) return;
  reading_ = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(tcp_), on_alloc, on_read_cb);
}

void Connection::pause_reading() {
  if (!reading_ || !tcp_) return;
  reading_ = false;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp_));
}

void Connection::make_ssl(std::shared_ptr<TlsContext> ctx) {
  tls_ctx_ = std::move(ctx);
  ssl_ = SSL_new(tls_ctx_->get());
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl_, rbio_, wbio_);
  handshake_done_ = false;
}

void Connection::start_tls(std::shared_ptr<TlsContext> ctx) {
  make_ssl(std::move(ctx));
  SSL_set_accept_state(ssl_);
}

void Connection::reinject(std::string_view data) {
  if (ssl_)
    handle_ciphertext(data);
  else if (handler_)
    handler_->on_read(data);
}

void Connection::start_tls_client(std::shared_ptr<TlsContext> ctx, const std::string& sni, bool verify) {
  make_ssl(std::move(ctx));
  verify_peer_ = verify;
  tls_clear_errors();
  SSL_set_connect_state(ssl_);
  if (!sni.empty()) SSL_set_tlsext_host_name(ssl_, sni.c_str());
  if (verify) {
    SSL_set_verify(ssl_, SSL_VERIFY_PEER, nullptr);
    SSL_set1_host(ssl_, sni.c_str());
  }
  tls_clear_errors();
  int rc = SSL_do_handshake(ssl_);  // ClientHello
  flush_tls();
  if (rc != 1) {
    int err = SSL_get_error(ssl_, rc);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
      close_tls_error(handshake_failure(err));
  }
}

std::string Connection::handshake_failure(int ssl_error) {
  // Only a client that asked for verification (delivery.tls: verify) reports
  // the certificate: OpenSSL records a verify result even under
  // SSL_VERIFY_NONE, and "self-signed certificate" would then hide the real
  // reason an opportunistic handshake failed.
  if (verify_peer_) {
    long vr = SSL_get_verify_result(ssl_);
    if (vr != X509_V_OK) {
      tls_clear_errors();  // the queue says the same; never leave it for another connection
      return std::string("TLS certificate verification failed: ") + X509_verify_cert_error_string(vr);
    }
  }
  return "TLS handshake failed: " + tls_failure_text(ssl_error);
}

void Connection::close_tls_error(std::string reason) {
  if (closing_ || !tcp_) return;
  // Every close caused by TLS is logged here, once, whoever owns the
  // connection (an inbound session logs its closes at debug level only).
  log::warn("net.tls_error", {{"side", outbound_ ? "client" : "server"},
                              {"peer", peer_ip_},
                              {"peer_port", peer_port_},
                              {"local_port", local_port_},
                              {"error", reason}});
  close(std::move(reason));
}

void Connection::handle_ciphertext(std::string_view data) {
  BIO_write(rbio_, data.data(), int(data.size()));
  if (!handshake_done_) {
    tls_clear_errors();
    int rc = SSL_do_handshake(ssl_);
    flush_tls();
    if (rc != 1) {
      int err = SSL_get_error(ssl_, rc);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
      close_tls_error(handshake_failure(err));
      return;
    }
    handshake_done_ = true;
    if (handler_) handler_->on_tls_ready();
    if (closing_) return;
  }
  // Drain every decrypted byte; the handler buffers what it cannot use yet.
  char buf[16 * 1024];
  for (;;) {
    tls_clear_errors();  // the handler may have run OpenSSL code (DKIM, spool crypto) since
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n > 0) {
      if (handler_) handler_->on_read(std::string_view(buf, size_t(n)));
      if (closing_) return;
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    flush_tls();  // session tickets, alerts, key updates
    if (err == SSL_ERROR_WANT_READ) return;
    if (err == SSL_ERROR_ZERO_RETURN) {
      close("client closed TLS");
      return;
    }
    close_tls_error("TLS error: " + tls_failure_text(err));
    return;
  }
}

void Connection::flush_tls() {
  char buf[16 * 1024];
  int n;
  std::string out;
  while ((n = BIO_read(wbio_, buf, sizeof buf)) > 0) out.append(buf, size_t(n));
  if (!out.empty()) raw_write(std::move(out));
}

void Connection::write(std::string_view data) {
  if (closing_ || !tcp_) return;
  if (ssl_) {
    while (!data.empty()) {
      tls_clear_errors();
      int n = SSL_write(ssl_, data.data(), int(data.size()));
      if (n <= 0) {
        close_tls_error("TLS write failed: " + tls_failure_text(SSL_get_error(ssl_, n)));
        return;
      }
      data.remove_prefix(size_t(n));
    }
    flush_tls();
  } else {
    raw_write(std::string(data));
  }
}

void Connection::raw_write(std::string data) {
  auto* w = new WriteReq{{}, std::move(data), this};
  uv_buf_t b = uv_buf_init(w->data.data(), unsigned(w->data.size()));
  w->req.data = w;
  writes_in_flight_++;
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(tcp_), &b, 1, [](uv_write_t* req, int status) {
    auto* w = static_cast<WriteReq*>(req->data);
    Connection* c = w->conn;
    delete w;
    c->writes_in_flight_--;
    if (status < 0 && !c->closing_) c->close(std::string("write failed: ") + uv_strerror(status));
    c->maybe_finish_close();
  });
  if (rc != 0) {
    writes_in_flight_--;
    delete w;
    close(std::string("write failed: ") + uv_strerror(rc));
  }
}

void Connection::close_after_flush(std::string reason) {
  if (closing_) return;
  if (ssl_ && handshake_done_) {
    tls_clear_errors();
    SSL_shutdown(ssl_);  // close_notify, so the client sees a clean TLS end
    tls_clear_errors();  // a failed close_notify changes nothing: we close anyway
    flush_tls();
  }
  flush_then_close_ = true;
  close_reason_ = std::move(reason);
  pause_reading();
  maybe_finish_close();
}

void Connection::maybe_finish_close() {
  if (flush_then_close_ && !closing_ && writes_in_flight_ == 0) close(close_reason_);
}

void Connection::close(std::string reason) {
  if (closing_ || !tcp_) return;
  closing_ = true;
  close_reason_ = std::move(reason);
  reading_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(tcp_), [](uv_handle_t* h) {
    auto* tcp = reinterpret_cast<uv_tcp_t*>(h);
    auto* self = static_cast<Connection*>(h->data);
    delete tcp;
    if (self == nullptr) return;
    self->tcp_ = nullptr;
    if (self->handler_) self->handler_->on_closed(self->close_reason_);
  });
}

std::string Connection::tls_version() const { return tls_active() ? SSL_get_version(ssl_) : ""; }

std::string Connection::tls_cipher() const {
  return tls_active() ? SSL_CIPHER_get_name(SSL_get_current_cipher(ssl_)) : "";
}

int Connection::tls_bits() const {
  return tls_active() ? SSL_CIPHER_get_bits(SSL_get_current_cipher(ssl_), nullptr) : 0;
}

}  // namespace ferry::net
