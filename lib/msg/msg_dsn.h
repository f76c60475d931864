// Delivery Status Notifications (RFC 3464, RFC 3461, RFC 6522): the
// multipart/report a relay sends back to the envelope sender when a
// recipient bounces or expires. Pure: every input, the time and the MIME
// boundary included, is passed in, so the output is testable byte for byte.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::msg {

struct DsnRecipient {
  std::string final_recipient;     // address
  std::string original_recipient;  // ORCPT as sent ("rfc822;xtext"), may be empty
  std::string action;              // "failed" | "delayed" | "delivered"
  std::string status;              // "5.1.1"
  std::string remote_mta;          // "mx.example.org", may be empty
  std::string diagnostic;          // remote reply "550 5.1.1 no such user", may be empty
};

struct DsnInfo {
  std::string reporting_mta;  // our hostname
  std::string to;             // the envelope sender being notified
  std::string envid;          // ENVID as sent, may be empty
  int64_t arrival_ms = 0;
  int64_t now_ms = 0;
  std::string message_id;     // for the DSN's own Message-ID
  std::string boundary;
  bool return_full = false;   // RET=FULL: the whole message, else headers only
  std::vector<DsnRecipient> rcpts;
};

// Returns the complete message (headers + body), lines ending in CRLF.
std::string build_dsn(const DsnInfo& info, std::string_view original);

}  // namespace ferry::msg
