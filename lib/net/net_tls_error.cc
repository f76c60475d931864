// See net_tls_error.h.
#include "net/net_tls_error.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace ferry::net {

void tls_clear_errors() {
  ERR_clear_error();
}

std::string tls_failure_text(int ssl_error) {
  std::string out;
  unsigned long e;
  // The reason string alone ("sslv3 alert handshake failure") is what an
  // admin can act on; the packed "error:0A000410:SSL routines::" prefix is
  // kept only when OpenSSL has no reason text for the code.
  while ((e = ERR_get_error()) != 0) {
    std::string one;
    if (const char* r = ERR_reason_error_string(e)) {
      one = r;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      one = buf;
    }
    if (out.find(one) != std::string::npos) continue;  // the same reason queued twice
    if (!out.empty()) out += "; ";
    out += one;
  }
  if (!out.empty()) return out;
  switch (ssl_error) {
    case SSL_ERROR_ZERO_RETURN:
    case SSL_ERROR_SYSCALL:
      return "connection closed by peer";
    case SSL_ERROR_SSL:
      return "protocol error";
    default:
      return "SSL error " + std::to_string(ssl_error);
  }
}

}  // namespace ferry::net
