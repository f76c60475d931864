// See msg_received.h.
#include "msg/msg_received.h"

#include <ctime>

#include <fmt/format.h>

#include "util/strings.h"

namespace ferry::msg {

std::string rfc5322_date(int64_t unix_ms) {
  std::time_t secs = unix_ms / 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  return fmt::format("{}, {} {} {} {:02d}:{:02d}:{:02d} +0000", kDays[tm.tm_wday], tm.tm_mday,
                     kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string build_received(const ReceivedInfo& in) {
  // RFC 3848: ESMTP + S (TLS) + A (authenticated); UTF8SMTP* per RFC 6531.
  std::string proto = in.smtputf8 ? "UTF8SMTP" : (in.esmtp ? "ESMTP" : "SMTP");
  if (in.esmtp || in.smtputf8) {
    if (!in.tls_version.empty()) proto += 'S';
    if (in.authenticated) proto += 'A';
  }
  // The EHLO name is client-controlled: strip anything that could break the
  // header (CR, LF, parentheses nesting is harmless but control bytes are not).
  std::string helo;
  for (char c : in.helo)
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7F && c != '(' && c != ')') helo += c;
  if (helo.empty()) helo = "unknown";

  std::string h = fmt::format("Received: from {} ([{}])\r\n\tby {} (ferry) with {} id {}", helo,
                              in.client_ip, in.by_host, proto, in.id);
  if (!in.tls_version.empty())
    h += fmt::format("\r\n\t(using {} with cipher {} ({}/{} bits))", in.tls_version, in.tls_cipher,
                     in.tls_bits, in.tls_bits);
  h += ";\r\n\t" + rfc5322_date(in.unix_ms) + "\r\n";
  return h;
}

}  // namespace ferry::msg
