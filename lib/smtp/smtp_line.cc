// See smtp_line.h.
#include "smtp/smtp_line.h"

namespace ferry::smtp {

LineScan CommandLineReader::next(std::string_view buf, size_t max_len) {
  LineScan r;
  size_t lf = buf.find('\n');
  if (discarding_) {
    if (lf == std::string_view::npos) {
      r.consumed = buf.size();
      return r;
    }
    discarding_ = false;
    r.status = LineScan::Status::error;
    r.error = LineError::too_long;
    r.consumed = lf + 1;
    return r;
  }
  if (lf == std::string_view::npos) {
    if (buf.size() >= max_len) {
      discarding_ = true;
      r.consumed = buf.size();
    }
    return r;
  }
  r.consumed = lf + 1;
  if (lf + 1 > max_len) {
    r.status = LineScan::Status::error;
    r.error = LineError::too_long;
    return r;
  }
  if (lf == 0 || buf[lf - 1] != '\r') {
    r.status = LineScan::Status::error;
    r.error = LineError::bare_lf;
    return r;
  }
  std::string_view line = buf.substr(0, lf - 1);
  if (line.find('\r') != std::string_view::npos) {
    r.status = LineScan::Status::error;
    r.error = LineError::bare_cr;
    return r;
  }
  if (line.find('\0') != std::string_view::npos) {
    r.status = LineScan::Status::error;
    r.error = LineError::nul;
    return r;
  }
  r.status = LineScan::Status::line;
  r.line = line;
  return r;
}

}  // namespace ferry::smtp
