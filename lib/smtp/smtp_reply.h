// SMTP replies: a code, an RFC 3463 enhanced status code and text, turned
// into wire form (multi-line with "code-" continuation). Pure data.
#pragma once

#include <string>
#include <string_view>

namespace ferry::smtp {

struct Reply {
  int code = 0;
  std::string enhanced;  // "5.5.2"; empty for replies that carry none (220, 221 greeting lines, EHLO)
  std::string text;      // lines separated by '\n'

  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }
  // "250-first\r\n250 last\r\n", each line prefixed by the enhanced code.
  std::string wire() const;
  // One-line form for logs: "550 5.7.1 text".
  std::string summary() const;
};

inline Reply reply(int code, std::string_view enhanced, std::string_view text) {
  return Reply{code, std::string(enhanced), std::string(text)};
}

}  // namespace ferry::smtp
