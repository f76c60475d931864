// See json_escape.h.
#include "util/json_escape.h"

#include <fmt/format.h>

#include "util/strings.h"

namespace ferry {

void append_json_string(std::string& out, std::string_view s) {
  bool utf8_ok = valid_utf8(s);
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7F || (c >= 0x80 && !utf8_ok))
          out += fmt::format("\\u{:04x}", c);
        else
          out += char(c);
    }
  }
  out += '"';
}

}  // namespace ferry
