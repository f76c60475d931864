// See smtp_reply.h.
#include "smtp/smtp_reply.h"

#include <fmt/format.h>

namespace ferry::smtp {

std::string Reply::wire() const {
  std::string out;
  std::string_view rest = text;
  for (;;) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    bool last = nl == std::string_view::npos;
    out += fmt::format("{}{}", code, last ? ' ' : '-');
    if (!enhanced.empty()) {
      out += enhanced;
      if (!line.empty()) out += ' ';
    }
    out += line;
    out += "\r\n";
    if (last) break;
    rest.remove_prefix(nl + 1);
  }
  return out;
}

std::string Reply::summary() const {
  std::string t = text;
  for (auto& c : t)
    if (c == '\n') c = ' ';
  if (enhanced.empty()) return fmt::format("{} {}", code, t);
  return fmt::format("{} {} {}", code, enhanced, t);
}

}  // namespace ferry::smtp
