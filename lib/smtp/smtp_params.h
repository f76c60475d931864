// ESMTP parameters of MAIL and RCPT: SIZE (RFC 1870), BODY (RFC 6152),
// SMTPUTF8 (RFC 6531), RET/ENVID/NOTIFY/ORCPT (RFC 3461), AUTH (RFC 4954).
// Unknown or repeated parameters are errors (555 5.5.4 / 501 5.5.4), because
// a parameter silently dropped is a promise silently broken.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "smtp/smtp_reply.h"
#include "util/expected.h"

namespace ferry::smtp {

enum class BodyType : uint8_t { unspecified = 0, sevenbit = 1, eightbitmime = 2, binarymime = 3 };
enum class DsnRet : uint8_t { unspecified = 0, full = 1, hdrs = 2 };

// NOTIFY bits; 0 means "not given" (the DSN default: FAILURE,DELAY).
enum NotifyBits : uint8_t {
  kNotifyNever = 1,
  kNotifySuccess = 2,
  kNotifyFailure = 4,
  kNotifyDelay = 8,
};

struct MailParams {
  std::optional<uint64_t> size;
  BodyType body = BodyType::unspecified;
  bool smtputf8 = false;
  DsnRet ret = DsnRet::unspecified;
  std::string envid;  // xtext as sent
  std::string auth;   // AUTH= mailbox as sent, "<>" included
};

struct RcptParams {
  uint8_t notify = 0;
  std::string orcpt;  // "rfc822;xtext" as sent
};

Expected<MailParams, Reply> parse_mail_params(std::string_view s);
Expected<RcptParams, Reply> parse_rcpt_params(std::string_view s);

// xtext (RFC 3461 §4): printable ASCII except '+' and '=', plus "+HH".
bool valid_xtext(std::string_view s);
std::string xtext_decode(std::string_view s);

}  // namespace ferry::smtp
