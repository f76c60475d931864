// The envelope of one accepted message as the spool keeps it: sender,
// recipients with their per-recipient delivery state, and the ESMTP
// parameters that must travel with it (BODY, SMTPUTF8, DSN). Pure data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "smtp/smtp_params.h"

namespace ferry::smtp {

enum class RcptState : uint8_t { pending = 0, delivered = 1, bounced = 2, expired = 3 };

struct EnvelopeRcpt {
  std::string address;
  std::string orcpt;     // RFC 3461 ORCPT as sent ("rfc822;xtext")
  uint8_t notify = 0;    // NotifyBits
  RcptState state = RcptState::pending;
  uint32_t attempts = 0;
  int last_code = 0;
  std::string last_response;
};

struct Envelope {
  std::string id;
  std::string sender;  // "" for the null reverse-path
  std::vector<EnvelopeRcpt> rcpts;
  int64_t created_ms = 0;
  int64_t next_attempt_ms = 0;
  uint64_t size = 0;  // body octets as spooled (Received: included)
  BodyType body = BodyType::unspecified;
  bool smtputf8 = false;
  DsnRet ret = DsnRet::unspecified;
  std::string envid;
  std::string client_ip;
  std::string helo;
  std::string auth_user;
  std::string listener;
};

}  // namespace ferry::smtp
