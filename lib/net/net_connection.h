// One TCP connection on the libuv loop, with optional TLS done through
// OpenSSL memory BIOs (so OpenSSL never touches the socket and the loop
// never blocks). The handler sees plaintext only.
//
// Lifetime: the owner calls close(); the handle closes asynchronously and
// then Handler::on_closed runs, after which the owner may delete the
// Connection. Never delete it before on_closed.
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <functional>

#include "net/net_tls.h"

namespace ferry::net {

class Connection {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void on_read(std::string_view data) = 0;
    virtual void on_tls_ready() = 0;
    virtual void on_closed(const std::string& reason) = 0;
  };

  // Takes a connection accepted on server. Returns nullptr if accept failed.
  static std::unique_ptr<Connection> accept(uv_stream_t* server);
  // Outbound: connects to ip:port within timeout_ms; cb gets the connection
  // or an error text. cb always runs, later, on the loop.
  using ConnectCallback = std::function<void(std::unique_ptr<Connection>, std::string error)>;
  static void connect(uv_loop_t* loop, const std::string& ip, uint16_t port, uint64_t timeout_ms,
                      ConnectCallback cb);
  ~Connection();

  void set_handler(Handler* h) { handler_ = h; }
  void start_reading();
  void pause_reading();

  // Queues bytes (encrypted when TLS is on). Ignored once closing.
  void write(std::string_view data);
  // Server side TLS: the handshake starts with the next bytes read.
  void start_tls(std::shared_ptr<TlsContext> ctx);
  // Client side TLS: sends the ClientHello now. sni names the server;
  // verify checks its certificate chain and name (delivery.tls: verify).
  void start_tls_client(std::shared_ptr<TlsContext> ctx, const std::string& sni, bool verify);
  // Bytes already read from the socket by the owner (e.g. after a PROXY
  // header) that belong to the TLS stream: processed as if just read.
  void reinject(std::string_view data);
  // Closes once queued writes are flushed (after a final reply).
  void close_after_flush(std::string reason);
  // Closes now, dropping unsent bytes.
  void close(std::string reason);

  bool tls_active() const { return ssl_ != nullptr && handshake_done_; }
  bool closing() const { return closing_ || flush_then_close_; }
  std::string tls_version() const;
  std::string tls_cipher() const;
  int tls_bits() const;
  const std::string& peer_ip() const { return peer_ip_; }
  uint16_t peer_port() const { return peer_port_; }
  uint16_t local_port() const { return local_port_; }

 private:
  Connection() = default;
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read_cb(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  void make_ssl(std::shared_ptr<TlsContext> ctx);
  void handle_ciphertext(std::string_view data);
  void flush_tls();
  void raw_write(std::string data);
  void maybe_finish_close();
  // Closes for a TLS failure and logs it (net.tls_error), so that no
  // TLS-caused close goes unseen.
  void close_tls_error(std::string reason);
  // Text for a failed handshake, draining the thread's error queue.
  std::string handshake_failure(int ssl_error);

  uv_tcp_t* tcp_ = nullptr;
  Handler* handler_ = nullptr;
  std::shared_ptr<TlsContext> tls_ctx_;
  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;  // network → OpenSSL
  BIO* wbio_ = nullptr;  // OpenSSL → network
  bool handshake_done_ = false;
  bool outbound_ = false;     // made by connect(): we are the client (TLS and SMTP)
  bool verify_peer_ = false;  // client side with certificate verification
  bool reading_ = false;
  bool closing_ = false;
  bool flush_then_close_ = false;
  size_t writes_in_flight_ = 0;
  std::string close_reason_;
  std::string peer_ip_;
  uint16_t peer_port_ = 0;
  uint16_t local_port_ = 0;
  char read_buf_[64 * 1024];
};

// "a.b.c.d" / "x:y::z" and port of a socket address.
bool addr_to_text(const sockaddr* sa, std::string& ip, uint16_t& port);

}  // namespace ferry::net
