// See smtp_address.h. Limits: local part 64 octets, domain 255, path 256
// (RFC 5321 §4.5.3.1).
#include "smtp/smtp_address.h"

#include <arpa/inet.h>

#include "util/strings.h"

namespace ferry::smtp {
namespace {

Reply bad(std::string_view what) { return reply(501, "5.1.3", what); }

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// atext of RFC 5322 §3.2.3, plus any non-ASCII byte (checked as UTF-8 later).
bool is_atext(unsigned char c) {
  if (c >= 0x80) return true;
  if (is_alnum(char(c))) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '/': case '=': case '?': case '^': case '_': case '`': case '{':
    case '|': case '}': case '~':
      return true;
    default:
      return false;
  }
}

bool valid_dot_string(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (char c : s) {
    if (c == '.') {
      if (prev == '.') return false;
    } else if (!is_atext(static_cast<unsigned char>(c))) {
      return false;
    }
    prev = c;
  }
  return true;
}

bool valid_quoted_string(std::string_view s) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      if (i + 2 >= s.size()) return false;
      unsigned char n = static_cast<unsigned char>(s[++i]);
      if (n < 32 || n == 127) return false;
    } else if (c == '"' || c < 32 || c == 127) {
      return false;
    }
  }
  return true;
}

bool valid_address_literal(std::string_view d) {
  std::string inner(d.substr(1, d.size() - 2));
  unsigned char buf[16];
  if (istarts_with(inner, "IPv6:")) return inet_pton(AF_INET6, inner.c_str() + 5, buf) == 1;
  return inet_pton(AF_INET, inner.c_str(), buf) == 1;
}

}  // namespace

bool valid_domain(std::string_view d, bool& utf8) {
  if (d.empty() || d.size() > 255) return false;
  if (d.front() == '[') return d.back() == ']' && valid_address_literal(d);
  for (auto label : split(d, '.')) {
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      unsigned char u = static_cast<unsigned char>(c);
      if (u >= 0x80) {
        utf8 = true;
      } else if (!is_alnum(c) && c != '-') {
        return false;
      }
    }
  }
  return !utf8 || valid_utf8(d);
}

Expected<Mailbox, Reply> parse_mailbox(std::string_view s) {
  // The '@' that splits is the last one outside a quoted local part.
  size_t at = std::string_view::npos;
  if (!s.empty() && s.front() == '"') {
    size_t i = 1;
    for (; i < s.size(); ++i) {
      if (s[i] == '\\') {
        ++i;
      } else if (s[i] == '"') {
        break;
      }
    }
    if (i + 1 < s.size() && s[i + 1] == '@') at = i + 1;
  } else {
    at = s.find('@');
  }
  if (at == std::string_view::npos) return bad("Address must be local@domain");
  Mailbox m;
  std::string_view local = s.substr(0, at), domain = s.substr(at + 1);
  if (local.empty() || local.size() > 64) return bad("Local part of address is empty or too long");
  if (!(local.front() == '"' ? valid_quoted_string(local) : valid_dot_string(local)))
    return bad("Bad local part syntax");
  if (!is_ascii(local)) {
    if (!valid_utf8(local)) return bad("Local part is not valid UTF-8");
    m.utf8 = true;
  }
  if (!valid_domain(domain, m.utf8)) return reply(501, "5.1.2", "Bad domain syntax");
  m.local = std::string(local);
  m.domain = std::string(domain);
  return m;
}

Expected<PathParse, Reply> parse_path(std::string_view s, bool allow_null) {
  if (s.empty() || s.front() != '<') return bad("Address must be enclosed in <>");
  // Find the closing '>' outside quotes.
  size_t end = std::string_view::npos;
  bool quoted = false;
  for (size_t i = 1; i < s.size(); ++i) {
    char c = s[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == '>' && !quoted) {
      end = i;
      break;
    }
  }
  if (end == std::string_view::npos) return bad("Missing '>' after address");
  if (end + 1 > 256) return bad("Path too long");
  std::string_view inner = s.substr(1, end - 1);
  PathParse r;
  r.consumed = end + 1;
  if (inner.empty()) {
    if (!allow_null) return bad("Null address not allowed here");
    return r;
  }
  // Source routes (A-d-l) are obsolete; RFC 5321 §C says accept and ignore.
  if (inner.front() == '@') {
    size_t colon = inner.find(':');
    if (colon == std::string_view::npos) return bad("Bad source route");
    inner.remove_prefix(colon + 1);
  }
  auto m = parse_mailbox(inner);
  if (!m) return m.error();
  r.mailbox = std::move(*m);
  return r;
}

}  // namespace ferry::smtp
