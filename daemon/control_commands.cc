// The control commands behind ferryctl: status, reload, queue
// summary/list/show/flush/delete/bounce (log search is in privacy.cc). Read-only commands
// read the spool with LMDB read transactions (no effect on the writer);
// commands that change the queue go through the delivery manager and the
// spool writer like any other change.
#include <unistd.h>

#include <map>
#include <set>

#include <fmt/format.h>

#include "delivery.h"
#include "server.h"
#include "smtp_session.h"
#include "util/ids.h"
#include "util/json_fields.h"
#include "util/log.h"
#include "util/strings.h"

namespace ferry {

using nlohmann::json;

namespace {

json ok(json result) { return {{"ok", true}, {"result", std::move(result)}}; }
json err(std::string message) { return {{"ok", false}, {"error", std::move(message)}}; }

const char* state_name(smtp::RcptState s) {
  switch (s) {
    case smtp::RcptState::pending: return "pending";
    case smtp::RcptState::delivered: return "delivered";
    case smtp::RcptState::bounced: return "bounced";
    case smtp::RcptState::expired: return "expired";
  }
  return "?";
}

std::string domain_of(const std::string& a) {
  size_t at = a.rfind('@');
  return at == std::string::npos ? a : to_lower(a.substr(at + 1));
}

json envelope_json(const smtp::Envelope& e, bool full) {
  json rcpts = json::array();
  uint32_t attempts = 0;
  std::string last_error;
  for (const auto& r : e.rcpts) {
    attempts = std::max(attempts, r.attempts);
    if (r.state == smtp::RcptState::pending && !r.last_response.empty()) last_error = r.last_response;
    if (!full && r.state != smtp::RcptState::pending) continue;
    json j = full ? json{{"address", r.address}, {"state", state_name(r.state)}, {"attempts", r.attempts},
                         {"last_code", r.last_code}, {"last_response", r.last_response}}
                  : json(r.address);
    if (full && !r.orcpt.empty()) j["orcpt"] = r.orcpt;
    rcpts.push_back(j);
  }
  json j = {{"id", e.id},
            {"from", e.sender},
            {"rcpts", rcpts},
            {"size", e.size},
            {"created", log::iso_timestamp(e.created_ms)},
            {"next_attempt", log::iso_timestamp(e.next_attempt_ms)},
            {"attempts", attempts},
            {"last_error", last_error}};
  if (full) {
    j["client_ip"] = e.client_ip;
    j["auth_user"] = e.auth_user;
    j["helo"] = e.helo;
    j["listener"] = e.listener;
    j["envid"] = e.envid;
    j["ret"] = e.ret == smtp::DsnRet::full ? "FULL" : e.ret == smtp::DsnRet::hdrs ? "HDRS" : "";
  }
  return j;
}

}  // namespace

void Server::handle_control(const json& req, ControlServer::Reply reply) {
  // control_request.cc checked the request; these reads stay typed anyway,
  // because value() throws on a wrong type and this runs in a libuv callback.
  std::string cmd = json_field::string_or(req, "cmd");
  const json args = req.contains("args") && req["args"].is_object() ? req["args"] : json::object();
  auto arg = [&](const char* k) { return json_field::string_or(args, k); };
  int64_t now = clock_.now_ms();

  if (cmd == "status") {
    json listeners = json::array();
    for (const auto& bl : listeners_)
      listeners.push_back({{"name", bl.cfg.name}, {"address", bl.listener ? bl.listener->bound_address() : ""}});
    auto st = writer_->stats();
    auto count = spool_->message_count();
    return reply(ok({{"version", FERRY_VERSION},
                     {"pid", ::getpid()},
                     {"uptime_s", (now - started_ms_) / 1000},
                     {"config", rt_->cfg.file},
                     {"listeners", listeners},
                     {"sessions", sessions_.size()},
                     {"queue", {{"messages", count ? *count : 0}, {"active", delivery_ ? delivery_->active() : 0}}},
                     {"counters",
                      {{"connections", metrics_.connections.load()},
                       {"accepted", metrics_.received.load()},
                       {"rejected", metrics_.rejected.load()},
                       {"delivered", metrics_.delivered.load()},
                       {"deferred", metrics_.deferred.load()},
                       {"bounced", metrics_.bounced.load()},
                       {"expired", metrics_.expired.load()},
                       {"auth_failures", metrics_.auth_failures.load()},
                       {"reloads_ok", metrics_.reloads_ok.load()},
                       {"reloads_failed", metrics_.reloads_failed.load()}}},
                     {"spool", {{"commits", st.batches}, {"writes", st.requests}, {"max_batch", st.max_batch}}}}));
  }
  if (cmd == "reload") {
    auto r = reload();
    return reply(r ? ok({{"file", rt_->cfg.file}}) : err(r.error().message));
  }
  if (cmd == "queue.list" || cmd == "queue.summary") {
    json list = json::array();
    struct Dest {
      uint64_t messages = 0, recipients = 0;
      int64_t oldest = 0;
      std::string last_error;
    };
    std::map<std::string, Dest> dests;
    auto r = spool_->for_each_scheduled([&](const smtp::Envelope& e) {
      if (cmd == "queue.list") {
        list.push_back(envelope_json(e, false));
        return true;
      }
      std::set<std::string> seen;
      for (const auto& rc : e.rcpts) {
        if (rc.state != smtp::RcptState::pending) continue;
        auto& d = dests[domain_of(rc.address)];
        d.recipients++;
        if (seen.insert(domain_of(rc.address)).second) d.messages++;
        if (d.oldest == 0 || e.created_ms < d.oldest) d.oldest = e.created_ms;
        if (!rc.last_response.empty()) d.last_error = rc.last_response;
      }
      return true;
    });
    if (!r) return reply(err(r.error().message));
    if (cmd == "queue.summary")
      for (const auto& [name, d] : dests)
        list.push_back({{"destination", name}, {"messages", d.messages}, {"recipients", d.recipients},
                        {"oldest_age_s", (now - d.oldest) / 1000}, {"last_error", d.last_error}});
    return reply(ok(list));
  }
  if (cmd == "queue.show") {
    auto e = spool_->get_envelope(arg("id"));
    if (!e) return reply(err(e.error().code == Errc::not_found ? "no such message: " + arg("id") : e.error().message));
    return reply(ok(envelope_json(*e, true)));
  }
  if (cmd == "queue.flush") {
    if (!delivery_) return reply(err("delivery is not running"));
    return delivery_->flush(arg("id"), to_lower(arg("domain")), [reply](Expected<uint64_t> n) {
      reply(n ? ok({{"flushed", *n}}) : err(n.error().message));
    });
  }
  if (cmd == "queue.delete" || cmd == "queue.bounce") {
    if (!delivery_) return reply(err("delivery is not running"));
    std::string id = arg("id");
    if (!valid_message_id(id)) return reply(err("not a message id: " + printable(id, 40)));
    auto r = delivery_->remove(id, cmd == "queue.bounce");
    if (!r) return reply(err(r.error().message));
    return after_commits([reply, id] { reply(ok({{"id", id}})); });
  }
  if (cmd == "log.search") {
    if (arg("address").empty()) return reply(err("log search needs --address"));
    return handle_privacy(cmd, args, std::move(reply));  // an index read on the thread pool
  }
  if (cmd.rfind("privacy.", 0) == 0 || cmd.rfind("suppress.", 0) == 0) return handle_privacy(cmd, args, std::move(reply));
  reply(err("unknown command: " + printable(cmd, 40)));
}

}  // namespace ferry
