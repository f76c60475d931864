// The client side of SMTP, pure: reading a server's (multi-line) replies,
// understanding its EHLO capabilities, and dot-stuffing content for DATA.
// The outbound session in daemon/ drives these over a socket.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "smtp/smtp_reply.h"

namespace ferry::smtp {

// Feeds bytes, yields whole replies. A malformed line (no 3-digit code,
// mixed codes in one reply, over 4096 octets, bare LF) is a protocol error.
class ReplyReader {
 public:
  struct Result {
    enum class Status { need_more, reply, error } status = Status::need_more;
    size_t consumed = 0;
    Reply reply;  // enhanced split off when the text starts with one
    std::string error;
  };
  Result next(std::string_view buf);

 private:
  std::string lines_;  // text of the continuation lines so far
  int code_ = 0;
};

struct Capabilities {
  bool esmtp = false;
  bool pipelining = false;
  bool starttls = false;
  bool eightbitmime = false;
  bool smtputf8 = false;
  bool dsn = false;
  bool chunking = false;
  bool enhancedstatuscodes = false;
  std::optional<uint64_t> size;  // SIZE limit (0 = no fixed limit)
  std::string auth;              // mechanisms, space separated, upper case
};
Capabilities parse_ehlo(const Reply& ehlo);

// Dot-stuffs content that already ends in CRLF and appends "." CRLF.
std::string dot_stuff(std::string_view content);

}  // namespace ferry::smtp
