// TLS configuration (OpenSSL 3): server contexts built from PEM files, TLS
// 1.2 minimum (1.3 preferred by OpenSSL's own order), no compression, no
// renegotiation. A context is immutable once built; a reload builds a new one
// and sessions already open keep the one they started with (shared_ptr).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "util/expected.h"

namespace ferry::net {

class TlsContext {
 public:
  ~TlsContext();
  static Expected<std::shared_ptr<TlsContext>> server(const std::string& cert_file,
                                                      const std::string& key_file,
                                                      const std::string& min_version);
  static Expected<std::shared_ptr<TlsContext>> client(const std::string& min_version);
  SSL_CTX* get() const { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

// The last OpenSSL error(s) as text, for logs.
std::string openssl_errors();

}  // namespace ferry::net
