// See msg_headers.h.
#include "msg/msg_headers.h"

#include "util/strings.h"

namespace ferry::msg {

HeaderSummary scan_headers(std::string_view m) {
  HeaderSummary s;
  size_t pos = 0;
  std::string* current = nullptr;  // the header whose folded lines we are collecting
  while (pos < m.size()) {
    size_t eol = m.find("\r\n", pos);
    std::string_view line = m.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    size_t next = eol == std::string_view::npos ? m.size() : eol + 2;
    if (line.empty()) {
      pos = next;
      break;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      if (current) *current += std::string(line);  // unfold: drop the CRLF only
    } else {
      current = nullptr;
      size_t colon = line.find(':');
      std::string_view name = trim(line.substr(0, colon));
      if (iequals(name, "Received")) {
        ++s.received;
      } else if (iequals(name, "Subject") && colon != std::string_view::npos && s.subject.empty()) {
        s.subject = std::string(trim(line.substr(colon + 1)));
        current = &s.subject;
      }
    }
    pos = next;
  }
  s.header_end = pos;
  for (unsigned char c : m)
    if (c >= 0x80) {
      s.eight_bit = true;
      break;
    }
  s.subject = std::string(trim(s.subject));
  return s;
}

}  // namespace ferry::msg
