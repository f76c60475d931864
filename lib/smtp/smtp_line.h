// Command-line framing (RFC 5321 §2.3.8, §4.5.3.1.4): a line ends with CRLF
// and nothing else. A bare LF or a bare CR is an error, never a line end:
// treating them as line ends is what SMTP smuggling exploits. Lines longer
// than the limit are reported once their end arrives, and their bytes are
// dropped meanwhile so a client cannot grow our buffer. A NUL byte has no
// place in any command or SASL response and is refused the same way, before
// a parser or a log line can cut the text short at it.
#pragma once

#include <cstddef>
#include <string_view>

namespace ferry::smtp {

enum class LineError { none, bare_lf, bare_cr, too_long, nul };

struct LineScan {
  enum class Status { need_more, line, error } status = Status::need_more;
  size_t consumed = 0;    // bytes the caller drops from its buffer
  std::string_view line;  // without the CRLF; valid when status == line
  LineError error = LineError::none;
};

class CommandLineReader {
 public:
  // max_len counts the CRLF: 512 for commands (RFC 5321 §4.5.3.1.4),
  // 12288 for SASL responses (RFC 4954 §4).
  LineScan next(std::string_view buf, size_t max_len);
  bool discarding() const { return discarding_; }

 private:
  bool discarding_ = false;
};

}  // namespace ferry::smtp
