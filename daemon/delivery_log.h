// Delivery-log events (DESIGN.md "External contract"): one JSON object per
// recipient and outcome, stored in the spool's log database and written as
// a line on stderr. Metadata only: never a body byte.
#pragma once

#include <string>

#include "smtp/smtp_envelope.h"
#include "smtp/smtp_reply.h"
#include "spool/spool.h"

namespace ferry {

struct EventInfo {
  const char* event = "";  // received | delivered | deferred | bounced | expired | rejected
  int64_t ts_ms = 0;
  const smtp::Envelope* env = nullptr;
  std::string rcpt;
  std::string subject;  // empty when delivery_log.subject is false
  std::string mx;
  std::string tls;
  const smtp::Reply* reply = nullptr;
  uint32_t attempt = 0;
  bool stderr_line = true;  // false: stored only (per-recipient "received"; the session logs one line)
};

// Builds the event and logs it on stderr; returns it for the spool.
spool::LogEvent log_event(const EventInfo& info);

}  // namespace ferry
