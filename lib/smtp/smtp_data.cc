// See smtp_data.h. One state machine serves both DATA and BDAT; BDAT simply
// never treats a leading dot specially.
#include "smtp/smtp_data.h"

namespace ferry::smtp {
namespace {
constexpr size_t kMaxLine = 998;  // octets before CRLF, RFC 5321 §4.5.3.1.6
}

void DataReader::fail(DataError e) {
  if (error_ == DataError::none) error_ = e;
}

void DataReader::finish_chunked() {
  if (state_ == State::saw_cr) fail(DataError::bare_cr);
  if (state_ == State::in_line) {
    // A final line without CRLF: RFC 3030 leaves it to the server; we keep the
    // message well-formed for the next hop by refusing it.
    fail(DataError::bare_lf);
  }
}

DataReader::Result DataReader::feed(std::string_view in, std::string& out) {
  Result r;
  bool keep = error_ == DataError::none && !oversize();
  // Copy runs of ordinary bytes in one append instead of byte by byte.
  size_t run_start = 0;
  auto flush_run = [&](size_t end) {
    if (keep && end > run_start) out.append(in.data() + run_start, end - run_start);
  };
  size_t i = 0;
  for (; i < in.size(); ++i) {
    char c = in[i];
    // Content, never a line end: the states below count it as they would
    // any other byte, so framing is unchanged and the message is refused.
    if (c == '\0') fail(DataError::nul);
    switch (state_) {
      case State::line_start:
        if (c == '.' && mode_ == Mode::dot_terminated) {
          flush_run(i);
          run_start = i + 1;  // the stuffing dot is never copied
          state_ = State::dot_at_start;
          ++line_len_;
          continue;
        }
        [[fallthrough]];
      case State::in_line:
        if (c == '\r') {
          state_ = State::saw_cr;
        } else if (c == '\n') {
          fail(DataError::bare_lf);
          state_ = State::in_line;  // a bare LF never starts a new line
        } else {
          state_ = State::in_line;
          if (++line_len_ > kMaxLine) fail(DataError::line_too_long);
          ++size_;
        }
        break;
      case State::saw_cr:
        if (c == '\n') {
          state_ = State::line_start;
          line_len_ = 0;
          size_ += 2;
        } else if (c == '\r') {
          fail(DataError::bare_cr);  // stay in saw_cr: this CR may precede LF
        } else {
          fail(DataError::bare_cr);
          state_ = State::in_line;
          ++size_;
        }
        break;
      case State::dot_at_start:
        if (c == '\r') {
          // Never copied: either it is part of the terminator or a bare CR
          // follows, and then the message is refused anyway.
          flush_run(i);
          run_start = i + 1;
          state_ = State::dot_cr;
        } else if (c == '\n') {
          fail(DataError::bare_lf);
          state_ = State::in_line;
        } else {
          // "..x" → ".x": the dot was stuffing; this byte is content.
          state_ = State::in_line;
          if (++line_len_ > kMaxLine) fail(DataError::line_too_long);
          ++size_;
        }
        break;
      case State::dot_cr:
        if (c == '\n') {
          // CRLF "." CRLF: the end. Nothing after it belongs to the message.
          flush_run(i);  // empty: the "." and CR were never part of a run
          r.done = true;
          r.consumed = i + 1;
          return r;
        }
        fail(DataError::bare_cr);
        state_ = (c == '\r') ? State::saw_cr : State::in_line;
        break;
    }
    if (keep && (error_ != DataError::none || oversize())) {
      // From the first problem on nothing more is kept; what was kept is
      // thrown away by the caller anyway.
      flush_run(i + 1);
      keep = false;
    }
  }
  flush_run(i);
  r.consumed = in.size();
  return r;
}

}  // namespace ferry::smtp
