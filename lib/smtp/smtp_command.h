// SMTP command parsing (RFC 5321 §4.1): the verb, and the arguments of the
// commands that have structure (MAIL, RCPT, BDAT, AUTH, EHLO/HELO). Pure:
// takes a line without its CRLF, returns a value or the reply to send.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "smtp/smtp_address.h"
#include "smtp/smtp_params.h"
#include "smtp/smtp_reply.h"
#include "util/expected.h"

namespace ferry::smtp {

enum class Verb {
  helo, ehlo, mail, rcpt, data, bdat, rset, noop, quit, vrfy, expn, help, starttls, auth, unknown
};
std::string_view to_string(Verb v);

struct Command {
  Verb verb = Verb::unknown;
  std::string_view arg;  // everything after the verb's single space
};

Command parse_command(std::string_view line);

struct MailFrom {
  std::optional<Mailbox> sender;  // nullopt: the null reverse-path <>
  MailParams params;
};
struct RcptTo {
  Mailbox rcpt;
  RcptParams params;
};
struct BdatArgs {
  uint64_t size = 0;
  bool last = false;
};
struct AuthArgs {
  std::string mechanism;                 // upper-cased
  std::optional<std::string> initial;    // initial response, "=" = empty
};

Expected<MailFrom, Reply> parse_mail_from(std::string_view arg);
Expected<RcptTo, Reply> parse_rcpt_to(std::string_view arg);
Expected<BdatArgs, Reply> parse_bdat(std::string_view arg);
Expected<AuthArgs, Reply> parse_auth(std::string_view arg);
// EHLO/HELO argument: a domain or an address literal. Returns it unchanged.
Expected<std::string, Reply> parse_helo(std::string_view arg);

}  // namespace ferry::smtp
