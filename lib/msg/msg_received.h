// The Received: trace header (RFC 5321 §4.4, RFC 3848 protocol names) that a
// relay prepends to every message it accepts. Pure: all inputs are passed in.
// Privacy: the header names neither the recipient(s) nor the authenticated
// user, since both would then travel to every later hop.
#pragma once

#include <cstdint>
#include <string>

namespace ferry::msg {

struct ReceivedInfo {
  std::string helo;        // what the client said in EHLO/HELO
  std::string client_ip;   // "192.0.2.1" or "2001:db8::1"
  std::string by_host;     // our server.hostname
  std::string id;          // the message id
  bool esmtp = true;       // EHLO rather than HELO
  bool authenticated = false;
  bool smtputf8 = false;
  std::string tls_version;  // "TLSv1.3"; empty without TLS
  std::string tls_cipher;   // "TLS_AES_256_GCM_SHA384"
  int tls_bits = 0;
  int64_t unix_ms = 0;
};

// Returns the folded header, ending in CRLF.
std::string build_received(const ReceivedInfo& info);

// RFC 5322 §3.3 date-time in UTC: "Mon, 23 Nov 2026 08:03:16 +0000".
std::string rfc5322_date(int64_t unix_ms);

}  // namespace ferry::msg
