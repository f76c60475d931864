// The message content of DATA (RFC 5321 §4.1.1.4, §4.5.2) and BDAT (RFC
// 3030), checked and dot-unstuffed byte by byte as it streams in.
//
// Only CRLF "." CRLF ends DATA. A bare LF or bare CR anywhere is an error,
// not a line end; after an error (or when the message is too big) the reader
// keeps consuming to the real terminator and emits nothing, so the client's
// remaining bytes are never read as commands: that is the SMTP smuggling
// defence. Lines over 998 octets plus CRLF are refused the same way, and so
// is any NUL byte: RFC 5322 text has none, and a NUL next to the final dot
// ("\r\n\0.\r\n", "\r\n.\0\r\n") is what the smtpsmug payloads hope a
// next hop reads as an end of data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::smtp {

enum class DataError { none, bare_lf, bare_cr, line_too_long, nul };

class DataReader {
 public:
  enum class Mode { dot_terminated, chunked };

  DataReader(Mode mode, uint64_t max_size) : mode_(mode), max_size_(max_size) {}

  struct Result {
    bool done = false;    // the terminating "." line was consumed
    size_t consumed = 0;  // bytes of input used
  };
  // Appends the unstuffed content of in to out (CRLFs kept, the final
  // "." CRLF dropped). In chunked mode it consumes everything and never
  // reports done; the caller counts BDAT bytes.
  Result feed(std::string_view in, std::string& out);
  // For BDAT LAST: a message must end with CRLF; a dangling CR is bare.
  void finish_chunked();

  DataError error() const { return error_; }
  bool oversize() const { return size_ > max_size_; }
  uint64_t size() const { return size_; }  // unstuffed octets seen, kept or not

 private:
  enum class State { line_start, in_line, saw_cr, dot_at_start, dot_cr };
  void fail(DataError e);

  Mode mode_;
  uint64_t max_size_;
  uint64_t size_ = 0;
  size_t line_len_ = 0;
  State state_ = State::line_start;
  DataError error_ = DataError::none;
};

}  // namespace ferry::smtp
