// See smtp_client_proto.h.
#include "smtp/smtp_client_proto.h"

#include <cctype>

#include "util/strings.h"

namespace ferry::smtp {
namespace {

bool is_enhanced(std::string_view t, char cls) {
  // "X.Y.Z" with X the reply class, Y and Z 1-3 digits.
  if (t.size() < 5 || t[0] != cls || t[1] != '.') return false;
  size_t i = 2, digits = 0;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i, ++digits;
  if (digits == 0 || digits > 3 || i >= t.size() || t[i] != '.') return false;
  ++i;
  digits = 0;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i, ++digits;
  return digits > 0 && digits <= 3 && (i == t.size() || t[i] == ' ');
}

}  // namespace

ReplyReader::Result ReplyReader::next(std::string_view buf) {
  // Parsed from the start each time until the reply is whole: replies are
  // short, and no half-reply state survives between calls.
  lines_.clear();
  code_ = 0;
  Result r;
  size_t pos = 0;
  for (;;) {
    size_t lf = buf.find('\n', pos);
    if (lf == std::string_view::npos) {
      if (buf.size() - pos > 4096) {
        r.status = Result::Status::error;
        r.error = "reply line too long";
      }
      // Keep partial lines in the caller's buffer: report what whole lines
      // we have taken only once the reply is complete.
      return r;
    }
    std::string_view line = buf.substr(pos, lf - pos);
    if (line.empty() || line.back() != '\r') {
      r.status = Result::Status::error;
      r.error = "reply line without CRLF";
      return r;
    }
    line.remove_suffix(1);
    pos = lf + 1;
    if (line.size() < 3 || !std::isdigit(static_cast<unsigned char>(line[0])) ||
        !std::isdigit(static_cast<unsigned char>(line[1])) ||
        !std::isdigit(static_cast<unsigned char>(line[2])) || (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
      r.status = Result::Status::error;
      r.error = "malformed reply: " + printable(line, 80);
      return r;
    }
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (code < 200 || code > 599) {
      r.status = Result::Status::error;
      r.error = "reply code out of range";
      return r;
    }
    if (code_ != 0 && code != code_) {
      r.status = Result::Status::error;
      r.error = "mixed codes in one reply";
      return r;
    }
    code_ = code;
    std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view();
    if (!lines_.empty()) lines_ += '\n';
    lines_ += text;
    bool last = line.size() == 3 || line[3] == ' ';
    if (!last) continue;
    r.status = Result::Status::reply;
    r.consumed = pos;
    r.reply.code = code_;
    std::string all = std::move(lines_);
    char cls = char('0' + code_ / 100);
    std::string_view first = std::string_view(all).substr(0, all.find('\n'));
    if (is_enhanced(first, cls)) {
      r.reply.enhanced = std::string(first.substr(0, first.find(' ')));
      // Strip the enhanced code from every line that carries it.
      std::string text_out;
      for (auto l : split(all, '\n')) {
        if (!text_out.empty()) text_out += '\n';
        if (istarts_with(l, r.reply.enhanced)) {
          l.remove_prefix(r.reply.enhanced.size());
          if (!l.empty() && l.front() == ' ') l.remove_prefix(1);
        }
        text_out += l;
      }
      r.reply.text = std::move(text_out);
    } else {
      r.reply.text = std::move(all);
    }
    lines_.clear();
    code_ = 0;
    return r;
  }
}

Capabilities parse_ehlo(const Reply& ehlo) {
  Capabilities c;
  c.esmtp = true;
  bool first = true;
  for (auto line : split(ehlo.text, '\n')) {
    if (first) {  // the greeting line names the server
      first = false;
      continue;
    }
    std::string_view kw = line.substr(0, line.find(' '));
    std::string_view arg = line.size() > kw.size() ? line.substr(kw.size() + 1) : std::string_view();
    if (iequals(kw, "PIPELINING")) c.pipelining = true;
    else if (iequals(kw, "STARTTLS")) c.starttls = true;
    else if (iequals(kw, "8BITMIME")) c.eightbitmime = true;
    else if (iequals(kw, "SMTPUTF8")) c.smtputf8 = true;
    else if (iequals(kw, "DSN")) c.dsn = true;
    else if (iequals(kw, "CHUNKING")) c.chunking = true;
    else if (iequals(kw, "ENHANCEDSTATUSCODES")) c.enhancedstatuscodes = true;
    else if (iequals(kw, "SIZE")) c.size = parse_u64(trim(arg)).value_or(0);
    else if (iequals(kw, "AUTH")) c.auth = to_upper(trim(arg));
  }
  return c;
}

std::string dot_stuff(std::string_view content) {
  std::string out;
  out.reserve(content.size() + content.size() / 64 + 8);
  bool line_start = true;
  size_t run = 0;
  for (size_t i = 0; i < content.size(); ++i) {
    if (line_start && content[i] == '.') {
      out.append(content.data() + run, i - run);
      out += '.';
      run = i;
    }
    line_start = content[i] == '\n';
  }
  out.append(content.data() + run, content.size() - run);
  if (!out.empty() && !(out.size() >= 2 && out.compare(out.size() - 2, 2, "\r\n") == 0)) out += "\r\n";
  out += ".\r\n";
  return out;
}

}  // namespace ferry::smtp
