// See smtp_sasl.h.
#include "smtp/smtp_sasl.h"

#include "util/base64.h"
#include "util/strings.h"

namespace ferry::smtp {
namespace {

SaslExchange::Step fail(int code, std::string_view enh, std::string_view text) {
  SaslExchange::Step s;
  s.kind = SaslExchange::Step::failed;
  s.reply = reply(code, enh, text);
  return s;
}

SaslExchange::Step challenge(std::string_view prompt) {
  SaslExchange::Step s;
  s.kind = SaslExchange::Step::challenge;
  s.reply = Reply{334, "", base64_encode(prompt)};
  return s;
}

SaslExchange::Step malformed() { return fail(501, "5.5.2", "Cannot decode authentication data"); }

}  // namespace

bool SaslExchange::supported(std::string_view m) { return iequals(m, "PLAIN") || iequals(m, "LOGIN"); }

std::pair<SaslExchange, SaslExchange::Step> SaslExchange::start(
    std::string_view mechanism, const std::optional<std::string>& initial) {
  SaslExchange x;
  if (iequals(mechanism, "PLAIN")) {
    x.mech_ = Mech::plain;
    x.phase_ = Phase::plain_response;
    if (!initial) return {x, challenge("")};
    return {x, x.plain(*initial)};
  }
  if (iequals(mechanism, "LOGIN")) {
    x.mech_ = Mech::login;
    x.phase_ = Phase::login_user;
    if (!initial) return {x, challenge("Username:")};
    return {x, x.next(*initial)};
  }
  return {x, fail(504, "5.5.4", "Unrecognized authentication mechanism")};
}

SaslExchange::Step SaslExchange::plain(std::string_view b64) {
  if (b64 == "*") return fail(501, "5.0.0", "Authentication cancelled");
  // "=" is the RFC 4954 spelling of an empty initial response.
  auto raw = b64 == "=" ? std::optional<std::string>("") : base64_decode(b64);
  if (!raw) return malformed();
  // authzid NUL authcid NUL passwd
  size_t a = raw->find('\0');
  if (a == std::string::npos) return malformed();
  size_t b = raw->find('\0', a + 1);
  if (b == std::string::npos || raw->find('\0', b + 1) != std::string::npos) return malformed();
  Step s;
  s.kind = Step::done;
  s.creds.authzid = raw->substr(0, a);
  s.creds.user = raw->substr(a + 1, b - a - 1);
  s.creds.password = raw->substr(b + 1);
  if (s.creds.user.empty()) return malformed();
  return s;
}

SaslExchange::Step SaslExchange::next(std::string_view line) {
  if (line == "*") return fail(501, "5.0.0", "Authentication cancelled");
  switch (phase_) {
    case Phase::plain_response:
      return plain(line);
    case Phase::login_user: {
      auto u = base64_decode(line);
      if (!u || u->empty()) return malformed();
      user_ = std::move(*u);
      phase_ = Phase::login_password;
      return challenge("Password:");
    }
    case Phase::login_password: {
      auto p = base64_decode(line);
      if (!p) return malformed();
      Step s;
      s.kind = Step::done;
      s.creds.user = user_;
      s.creds.password = std::move(*p);
      return s;
    }
  }
  return malformed();
}

}  // namespace ferry::smtp
