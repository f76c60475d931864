// See smtp_command.h.
#include "smtp/smtp_command.h"

#include <array>
#include <utility>

#include "util/strings.h"

namespace ferry::smtp {
namespace {

constexpr std::array<std::pair<std::string_view, Verb>, 14> kVerbs{{
    {"HELO", Verb::helo}, {"EHLO", Verb::ehlo}, {"MAIL", Verb::mail}, {"RCPT", Verb::rcpt},
    {"DATA", Verb::data}, {"BDAT", Verb::bdat}, {"RSET", Verb::rset}, {"NOOP", Verb::noop},
    {"QUIT", Verb::quit}, {"VRFY", Verb::vrfy}, {"EXPN", Verb::expn}, {"HELP", Verb::help},
    {"STARTTLS", Verb::starttls}, {"AUTH", Verb::auth},
}};

std::string syntax_hint(std::string_view kw) {
  return std::string("Syntax: ") + (kw == "FROM:" ? "MAIL FROM:<address>" : "RCPT TO:<address>");
}

// "FROM:" / "TO:" then the path; a space after the colon is not in the
// grammar but common enough (Outlook, old PHP mailers) to tolerate.
Expected<std::string_view, Reply> after_keyword(std::string_view arg, std::string_view kw) {
  if (!istarts_with(arg, kw))
    return reply(501, "5.5.4", syntax_hint(kw));
  arg.remove_prefix(kw.size());
  while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
  return arg;
}

}  // namespace

std::string_view to_string(Verb v) {
  for (const auto& [name, verb] : kVerbs)
    if (verb == v) return name;
  return "UNKNOWN";
}

Command parse_command(std::string_view line) {
  Command c;
  size_t sp = line.find(' ');
  std::string_view verb = line.substr(0, sp);
  if (sp != std::string_view::npos) c.arg = line.substr(sp + 1);
  for (const auto& [name, v] : kVerbs) {
    if (iequals(verb, name)) {
      c.verb = v;
      break;
    }
  }
  return c;
}

Expected<MailFrom, Reply> parse_mail_from(std::string_view arg) {
  auto rest = after_keyword(arg, "FROM:");
  if (!rest) return rest.error();
  auto path = parse_path(*rest, /*allow_null=*/true);
  if (!path) return path.error();
  std::string_view tail = rest->substr(path->consumed);
  if (!tail.empty() && tail.front() != ' ') return reply(501, "5.5.4", "Junk after address");
  auto params = parse_mail_params(tail);
  if (!params) return params.error();
  MailFrom m;
  m.sender = std::move(path->mailbox);
  m.params = std::move(*params);
  return m;
}

Expected<RcptTo, Reply> parse_rcpt_to(std::string_view arg) {
  auto rest = after_keyword(arg, "TO:");
  if (!rest) return rest.error();
  auto path = parse_path(*rest, /*allow_null=*/false);
  if (!path) return path.error();
  std::string_view tail = rest->substr(path->consumed);
  if (!tail.empty() && tail.front() != ' ') return reply(501, "5.5.4", "Junk after address");
  auto params = parse_rcpt_params(tail);
  if (!params) return params.error();
  RcptTo r;
  r.rcpt = std::move(*path->mailbox);
  r.params = std::move(*params);
  return r;
}

Expected<BdatArgs, Reply> parse_bdat(std::string_view arg) {
  auto parts = split(arg, ' ');
  if (parts.empty() || parts.size() > 2) return reply(501, "5.5.4", "Syntax: BDAT size [LAST]");
  auto n = parse_u64(parts[0]);
  if (!n) return reply(501, "5.5.4", "Syntax: BDAT size [LAST]");
  BdatArgs b;
  b.size = *n;
  if (parts.size() == 2) {
    if (!iequals(parts[1], "LAST")) return reply(501, "5.5.4", "Syntax: BDAT size [LAST]");
    b.last = true;
  }
  return b;
}

Expected<AuthArgs, Reply> parse_auth(std::string_view arg) {
  auto parts = split(arg, ' ');
  if (parts.empty() || parts[0].empty() || parts.size() > 2)
    return reply(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
  AuthArgs a;
  a.mechanism = to_upper(parts[0]);
  if (parts.size() == 2) a.initial = std::string(parts[1]);
  return a;
}

Expected<std::string, Reply> parse_helo(std::string_view arg) {
  arg = trim(arg);
  if (arg.empty()) return reply(501, "5.5.4", "Syntax: EHLO hostname");
  // Only the first word counts. Applications send all sorts of names here
  // (bare host names, underscores, unbracketed IPs); a relay that refuses them
  // loses mail and gains nothing, since the name is only recorded in
  // Received:. Only control bytes and invalid UTF-8 are refused.
  std::string_view name = arg.substr(0, arg.find(' '));
  for (unsigned char c : name)
    if (c < 0x21 || c == 0x7F) return reply(501, "5.5.4", "Invalid EHLO hostname");
  if (!valid_utf8(name) || name.size() > 255) return reply(501, "5.5.4", "Invalid EHLO hostname");
  return std::string(name);
}

}  // namespace ferry::smtp
