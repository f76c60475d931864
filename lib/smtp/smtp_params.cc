// See smtp_params.h.
#include "smtp/smtp_params.h"

#include "util/strings.h"

namespace ferry::smtp {
namespace {

struct Param {
  std::string_view key;
  std::optional<std::string_view> value;
};

// Splits "K1=V1 K2 K3=V3" into keyword/value pairs; keywords are
// esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-").
Expected<std::vector<Param>, Reply> split_params(std::string_view s) {
  std::vector<Param> out;
  for (auto tok : split(s, ' ')) {
    if (tok.empty()) continue;  // tolerate doubled spaces
    Param p;
    size_t eq = tok.find('=');
    p.key = tok.substr(0, eq);
    if (eq != std::string_view::npos) p.value = tok.substr(eq + 1);
    if (p.key.empty()) return reply(501, "5.5.4", "Empty parameter keyword");
    for (char c : p.key)
      if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
        return reply(501, "5.5.4", "Bad parameter keyword");
    // esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 under SMTPUTF8.
    if (p.value) {
      for (unsigned char c : *p.value)
        if (c <= ' ' || c == '=' || c == 0x7F) return reply(501, "5.5.4", "Bad parameter value");
    }
    for (const auto& prev : out)
      if (iequals(prev.key, p.key)) return reply(501, "5.5.4", "Duplicate parameter");
    out.push_back(p);
  }
  return out;
}

Reply unknown_param(std::string_view key) {
  return reply(555, "5.5.4", "Unsupported parameter " + printable(key, 32));
}

bool needs_value(const Param& p) { return p.value && !p.value->empty(); }

}  // namespace

bool valid_xtext(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '+') {
      auto hex = [](char h) { return (h >= '0' && h <= '9') || (h >= 'A' && h <= 'F'); };
      if (i + 2 >= s.size() || !hex(s[i + 1]) || !hex(s[i + 2])) return false;
      i += 2;
    } else if (c < '!' || c > '~' || c == '=') {
      return false;
    }
  }
  return true;
}

std::string xtext_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && i + 2 < s.size()) {
      auto v = [](char h) { return h <= '9' ? h - '0' : h - 'A' + 10; };
      out += char(v(s[i + 1]) * 16 + v(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

Expected<MailParams, Reply> parse_mail_params(std::string_view s) {
  auto params = split_params(s);
  if (!params) return params.error();
  MailParams m;
  for (const auto& p : *params) {
    if (iequals(p.key, "SIZE")) {
      auto v = p.value ? parse_u64(*p.value) : std::nullopt;
      if (!v) return reply(501, "5.5.4", "SIZE needs a decimal number");
      m.size = *v;
    } else if (iequals(p.key, "BODY")) {
      if (!p.value) return reply(501, "5.5.4", "BODY needs a value");
      if (iequals(*p.value, "7BIT"))
        m.body = BodyType::sevenbit;
      else if (iequals(*p.value, "8BITMIME"))
        m.body = BodyType::eightbitmime;
      else
        return reply(501, "5.5.4", "BODY must be 7BIT or 8BITMIME");
    } else if (iequals(p.key, "SMTPUTF8")) {
      if (p.value) return reply(501, "5.5.4", "SMTPUTF8 takes no value");
      m.smtputf8 = true;
    } else if (iequals(p.key, "RET")) {
      if (!p.value) return reply(501, "5.5.4", "RET needs a value");
      if (iequals(*p.value, "FULL"))
        m.ret = DsnRet::full;
      else if (iequals(*p.value, "HDRS"))
        m.ret = DsnRet::hdrs;
      else
        return reply(501, "5.5.4", "RET must be FULL or HDRS");
    } else if (iequals(p.key, "ENVID")) {
      if (!needs_value(p) || p.value->size() > 100 || !valid_xtext(*p.value))
        return reply(501, "5.5.4", "ENVID must be xtext of at most 100 characters");
      m.envid = std::string(*p.value);
    } else if (iequals(p.key, "AUTH")) {
      if (!needs_value(p)) return reply(501, "5.5.4", "AUTH needs a value");
      m.auth = std::string(*p.value);
    } else {
      return unknown_param(p.key);
    }
  }
  return m;
}

Expected<RcptParams, Reply> parse_rcpt_params(std::string_view s) {
  auto params = split_params(s);
  if (!params) return params.error();
  RcptParams r;
  for (const auto& p : *params) {
    if (iequals(p.key, "NOTIFY")) {
      if (!needs_value(p)) return reply(501, "5.5.4", "NOTIFY needs a value");
      for (auto item : split(*p.value, ',')) {
        uint8_t bit;
        if (iequals(item, "NEVER"))
          bit = kNotifyNever;
        else if (iequals(item, "SUCCESS"))
          bit = kNotifySuccess;
        else if (iequals(item, "FAILURE"))
          bit = kNotifyFailure;
        else if (iequals(item, "DELAY"))
          bit = kNotifyDelay;
        else
          return reply(501, "5.5.4", "NOTIFY takes NEVER or SUCCESS,FAILURE,DELAY");
        if (r.notify & bit) return reply(501, "5.5.4", "NOTIFY value repeated");
        r.notify |= bit;
      }
      if ((r.notify & kNotifyNever) && r.notify != kNotifyNever)
        return reply(501, "5.5.4", "NOTIFY=NEVER cannot be combined");
    } else if (iequals(p.key, "ORCPT")) {
      if (!needs_value(p)) return reply(501, "5.5.4", "ORCPT needs a value");
      size_t semi = p.value->find(';');
      if (semi == std::string_view::npos || semi == 0 || p.value->size() > 500 ||
          !valid_xtext(p.value->substr(semi + 1)))
        return reply(501, "5.5.4", "ORCPT must be addr-type;xtext");
      r.orcpt = std::string(*p.value);
    } else {
      return unknown_param(p.key);
    }
  }
  return r;
}

}  // namespace ferry::smtp
