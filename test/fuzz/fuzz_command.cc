// libFuzzer: command framing and every argument parser of lib/smtp.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "smtp/smtp_command.h"
#include "smtp/smtp_line.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  ferry::smtp::CommandLineReader reader;
  while (!in.empty()) {
    auto scan = reader.next(in, 512);
    if (scan.consumed == 0) break;
    if (scan.status == ferry::smtp::LineScan::Status::line) {
      auto cmd = ferry::smtp::parse_command(scan.line);
      (void)ferry::smtp::parse_mail_from(cmd.arg);
      (void)ferry::smtp::parse_rcpt_to(cmd.arg);
      (void)ferry::smtp::parse_bdat(cmd.arg);
      (void)ferry::smtp::parse_auth(cmd.arg);
      (void)ferry::smtp::parse_helo(cmd.arg);
    }
    in.remove_prefix(scan.consumed);
  }
  return 0;
}
