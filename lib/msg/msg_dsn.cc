// See msg_dsn.h. The human part says plainly what happened and what the
// sender can do; the machine part (message/delivery-status) follows RFC
// 3464 field by field; the third part returns the original headers (or the
// whole message with RET=FULL).
#include "msg/msg_dsn.h"

#include <fmt/format.h>

#include "msg/msg_headers.h"
#include "msg/msg_received.h"
#include "util/strings.h"

namespace ferry::msg {

std::string build_dsn(const DsnInfo& in, std::string_view original) {
  bool failed = false, delayed = false;
  for (const auto& r : in.rcpts) {
    failed |= r.action == "failed";
    delayed |= r.action == "delayed";
  }
  std::string subject = failed ? "Undelivered Mail Returned to Sender"
                        : delayed ? "Delayed Mail (still being retried)"
                                  : "Successful Mail Delivery Report";
  std::string out;
  out += fmt::format("From: Mail Delivery System <MAILER-DAEMON@{}>\r\n", in.reporting_mta);
  out += fmt::format("To: <{}>\r\n", in.to);
  out += fmt::format("Subject: {}\r\n", subject);
  out += fmt::format("Date: {}\r\n", rfc5322_date(in.now_ms));
  out += fmt::format("Message-ID: <{}@{}>\r\n", in.message_id, in.reporting_mta);
  out += "Auto-Submitted: auto-replied\r\n";
  out += "MIME-Version: 1.0\r\n";
  out += fmt::format("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{}\"\r\n",
                     in.boundary);
  out += "\r\nThis is a MIME-encapsulated message.\r\n\r\n";

  out += fmt::format("--{}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", in.boundary);
  out += fmt::format("This is the mail system at {}.\r\n\r\n", in.reporting_mta);
  if (failed)
    out += "Your message could not be delivered to one or more recipients.\r\n"
           "It has not been delivered and will not be retried.\r\n\r\n";
  else if (delayed)
    out += "Your message has not been delivered yet; delivery is still being retried.\r\n\r\n";
  for (const auto& r : in.rcpts) {
    out += fmt::format("<{}>: {}", r.final_recipient, r.action);
    if (!r.remote_mta.empty()) out += fmt::format(", host {} said", r.remote_mta);
    if (!r.diagnostic.empty()) out += ": " + printable(r.diagnostic, 400);
    out += "\r\n";
  }

  out += fmt::format("\r\n--{}\r\nContent-Type: message/delivery-status\r\n\r\n", in.boundary);
  out += fmt::format("Reporting-MTA: dns; {}\r\n", in.reporting_mta);
  if (!in.envid.empty()) out += fmt::format("Original-Envelope-Id: {}\r\n", in.envid);
  out += fmt::format("Arrival-Date: {}\r\n", rfc5322_date(in.arrival_ms));
  for (const auto& r : in.rcpts) {
    out += "\r\n";
    out += fmt::format("Final-Recipient: rfc822; {}\r\n", r.final_recipient);
    if (!r.original_recipient.empty()) {
      std::string orcpt = r.original_recipient;
      size_t semi = orcpt.find(';');
      out += fmt::format("Original-Recipient: {}; {}\r\n", orcpt.substr(0, semi), orcpt.substr(semi + 1));
    }
    out += fmt::format("Action: {}\r\n", r.action);
    out += fmt::format("Status: {}\r\n", r.status);
    if (!r.remote_mta.empty()) out += fmt::format("Remote-MTA: dns; {}\r\n", r.remote_mta);
    if (!r.diagnostic.empty())
      out += fmt::format("Diagnostic-Code: smtp; {}\r\n", printable(r.diagnostic, 400));
  }

  auto headers = scan_headers(original);
  out += fmt::format("\r\n--{}\r\n", in.boundary);
  if (in.return_full) {
    out += "Content-Type: message/rfc822\r\n\r\n";
    out += original;
  } else {
    out += "Content-Type: text/rfc822-headers\r\n\r\n";
    out += original.substr(0, headers.header_end);
  }
  if (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0) out += "\r\n";
  out += fmt::format("\r\n--{}--\r\n", in.boundary);
  return out;
}

}  // namespace ferry::msg
