// Address syntax of RFC 5321 §4.1.2 with the UTF-8 extensions of RFC 6531:
// Path = "<" [ A-d-l ":" ] Mailbox ">", Mailbox = Local-part "@" ( Domain /
// address-literal ). Pure; the local part is kept exactly as sent (a relay
// must not rewrite it), the domain is kept too and compared case-insensitively.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "smtp/smtp_reply.h"
#include "util/expected.h"

namespace ferry::smtp {

struct Mailbox {
  std::string local;
  std::string domain;  // "example.com" or "[192.0.2.1]"
  bool utf8 = false;   // non-ASCII in either part: needs SMTPUTF8
  std::string str() const { return local + "@" + domain; }
};

struct PathParse {
  std::optional<Mailbox> mailbox;  // nullopt: the null path "<>"
  size_t consumed = 0;             // through the closing '>'
};

// Parses a path at the start of s. allow_null accepts "<>" (MAIL FROM only).
Expected<PathParse, Reply> parse_path(std::string_view s, bool allow_null);
// Parses "local@domain" (no angle brackets).
Expected<Mailbox, Reply> parse_mailbox(std::string_view s);
bool valid_domain(std::string_view d, bool& utf8);

}  // namespace ferry::smtp
