// See net_tls.h.
#include "net/net_tls.h"

#include <openssl/err.h>

#include <fmt/format.h>

namespace ferry::net {

std::string openssl_errors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

namespace {
int version_of(const std::string& v) { return v == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION; }

// TLS 1.2 suites we serve: ECDHE key exchange (forward secrecy) with an AEAD
// cipher only, Mozilla's "intermediate" profile without its DHE suites.
// Static-RSA and CBC suites are gone: no forward secrecy, and CBC's MAC-then-
// encrypt is the Lucky13/POODLE family. Every TLS 1.2 client of the last
// decade has one of these. TLS 1.3 suites stay OpenSSL's defaults (all AEAD).
constexpr const char* kServerCiphers12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// Delivery adds DHE with AEAD after them, still forward-secret: Windows
// Server 2012 R2 (Exchange) with an RSA certificate offers no ECDHE-RSA-GCM
// suite, and with delivery.tls: may a failed handshake would mean a deferral
// or a plaintext delivery, both worse than DHE-RSA-AES-GCM.
constexpr const char* kClientCiphers12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
}  // namespace

Expected<std::shared_ptr<TlsContext>> TlsContext::server(const std::string& cert_file,
                                                         const std::string& key_file,
                                                         const std::string& min_version) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return Error(openssl_errors());
  std::shared_ptr<TlsContext> holder(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, version_of(min_version));
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx, kServerCiphers12) != 1)
    return Error(fmt::format("TLS 1.2 cipher list: {}", openssl_errors()));
  // Partial writes let one SSL_write span several records without retry
  // bookkeeping; moving buffers because our write buffers are std::strings
  // that may be reallocated between retries.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1)
    return Error(fmt::format("tls.certificate {}: {}", cert_file, openssl_errors()));
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return Error(fmt::format("tls.key {}: {}", key_file, openssl_errors()));
  if (SSL_CTX_check_private_key(ctx) != 1)
    return Error(fmt::format("tls.key {} does not match tls.certificate {}", key_file, cert_file));
  return holder;
}

Expected<std::shared_ptr<TlsContext>> TlsContext::client(const std::string& min_version) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return Error(openssl_errors());
  std::shared_ptr<TlsContext> holder(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, version_of(min_version));
  if (SSL_CTX_set_cipher_list(ctx, kClientCiphers12) != 1)
    return Error(fmt::format("TLS 1.2 cipher list: {}", openssl_errors()));
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_default_verify_paths(ctx);
  return holder;
}

}  // namespace ferry::net
