// What a relay needs from a message's header block (RFC 5322 §2.2): how
// many Received: headers it carries (mail-loop detection, RFC 5321 §6.3)
// and its Subject (the delivery log). Pure; reads at most the header block.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ferry::msg {

struct HeaderSummary {
  size_t received = 0;   // Received: headers
  std::string subject;   // unfolded, as sent (encoded words kept)
  bool eight_bit = false;  // any octet >= 0x80 anywhere in the message
  size_t header_end = 0;   // offset of the body (after the empty line), or size
};

HeaderSummary scan_headers(std::string_view message);

}  // namespace ferry::msg
