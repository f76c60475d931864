// See delivery_log.h. nlohmann-json builds the stored object: it escapes
// arbitrary remote replies and UTF-8 addresses correctly, which is the part
// a hand-written encoder gets wrong.
#include "delivery_log.h"

#include <nlohmann/json.hpp>

#include <ctime>

#include <fmt/format.h>

#include "util/log.h"

namespace ferry {

spool::LogEvent log_event(const EventInfo& in) {
  nlohmann::json j;
  j["ts"] = log::iso_timestamp(in.ts_ms);
  j["event"] = in.event;
  j["id"] = in.env->id;
  j["from"] = in.env->sender;
  j["rcpt"] = in.rcpt;
  if (!in.subject.empty()) j["subject"] = in.subject;
  j["size"] = in.env->size;
  j["client_ip"] = in.env->client_ip;
  j["auth_user"] = in.env->auth_user;
  if (!in.mx.empty()) j["mx"] = in.mx;
  if (!in.tls.empty()) j["tls"] = in.tls;
  if (in.reply) {
    j["code"] = in.reply->code;
    j["enhanced"] = in.reply->enhanced;
    j["response"] = in.reply->summary();
  }
  if (in.attempt) j["attempt"] = in.attempt;
  std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

  log::Level level = std::string_view(in.event) == "deferred" ? log::Level::warn : log::Level::info;
  if (in.stderr_line)
    log::write(level, in.event,
             {{"id", in.env->id},
              {"from", in.env->sender},
              {"rcpt", in.rcpt},
              {"mx", in.mx},
              {"tls", in.tls},
              {"response", in.reply ? in.reply->summary() : std::string()},
              {"attempt", in.attempt}});
  return spool::LogEvent{in.ts_ms, std::move(text), {}};
}

}  // namespace ferry
