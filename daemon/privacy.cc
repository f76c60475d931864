// GDPR art. 15/17/20 and CCPA requests: export and erase everything held
// about one address (delivery-log events, queued envelopes, suppression
// entries, lines of delivery_log.file), log search, and the suppression
// list commands. Reads of the log (through its address index) and scans
// of the queue run on the libuv thread pool with LMDB read transactions, so a
// large log never stalls the event loop; changes go through the spool
// writer. The erase audit line names the address only by a keyed hash.
#include <fmt/format.h>

#include "delivery.h"
#include "privacy_match.h"
#include "server.h"
#include "util/json_fields.h"
#include "util/log.h"
#include "util/strings.h"

namespace ferry {

using nlohmann::json;

namespace {

struct Scan {
  uv_work_t req;
  Server* server;
  spool::Spool* spool;
  std::string address;
  std::string cmd;
  json args;
  ControlServer::Reply reply;
  // results
  json events = json::array();
  std::vector<std::string> event_keys;
  json queued = json::array();
  std::vector<std::string> queued_ids;
  json suppressions = json::array();
  std::shared_ptr<DailyFile> event_file;  // erase only
  size_t file_lines = 0;
  std::string error;
};

bool involves(const smtp::Envelope& e, const std::string& a) {
  if (iequals(e.sender, a)) return true;
  for (const auto& r : e.rcpts)
    if (iequals(r.address, a)) return true;
  return false;
}

}  // namespace

void Server::handle_privacy(const std::string& cmd, const json& args, ControlServer::Reply reply) {
  auto ok = [](json r) { return json{{"ok", true}, {"result", std::move(r)}}; };
  auto err = [](std::string m) { return json{{"ok", false}, {"error", std::move(m)}}; };
  // Typed reads: value() throws on a wrong type, and this runs in a libuv
  // callback (control_request.cc has checked the types already).
  std::string address = to_lower(json_field::string_or(args, "address"));
  if (cmd == "suppress.list") {
    json list = json::array();
    auto r = spool_->for_each_suppression([&](const std::string&, const std::string& j) {
      auto v = json::parse(j, nullptr, false);
      if (v.is_object()) list.push_back(std::move(v));
    });
    return reply(r ? ok(list) : err(r.error().message));
  }
  if (address.empty() || address.find('@') == std::string::npos)
    return reply(err(cmd + " needs --address local@domain"));
  if (cmd == "suppress.add") {
    return suppress(address, json_field::string_or(args, "reason", "added by the administrator"),
                    [reply, ok, err, address](Expected<void> r) { reply(r ? ok({{"address", address}}) : err(r.error().message)); });
  }
  if (cmd == "suppress.remove") {
    return unsuppress(address, [reply, ok, err, address](Expected<void> r) {
      reply(r ? ok({{"address", address}}) : err(r.error().message));
    });
  }
  if (cmd != "privacy.export" && cmd != "privacy.erase" && cmd != "log.search")
    return reply(err("unknown command: " + printable(cmd, 40)));

  auto* s = new Scan;
  s->server = this;
  s->spool = spool_.get();
  s->address = address;
  s->cmd = cmd;
  s->args = args;
  s->reply = std::move(reply);
  if (cmd == "privacy.erase") s->event_file = event_file_;
  s->req.data = s;
  uv_queue_work(
      loop_, &s->req,
      [](uv_work_t* w) {
        auto* s = static_cast<Scan*>(w->data);
        // On a libuv worker an exception would abort ferryd. Spool records
        // and file lines are read with typed accessors; the catch is the
        // last resort for what they miss (bad_alloc, a bug).
        try {
          auto since = json_field::get_int(s->args, "since_ms");  // parse_request checked it already
          if (!since) {
            s->error = since.error().message;
            return;
          }
          auto r = s->spool->for_each_log_of(s->address, *since, [&](const spool::LogEvent& ev) {
            json j = json::parse(ev.json, nullptr, false);
            if (j.is_discarded()) return;
            s->events.push_back(std::move(j));
            s->event_keys.push_back(ev.key);
          });
          if (!r) s->error = r.error().message;
          if (s->cmd == "log.search") return;
          r = s->spool->for_each_scheduled([&](const smtp::Envelope& e) {
            if (!involves(e, s->address)) return true;
            json rc = json::array();
            for (const auto& x : e.rcpts) rc.push_back(x.address);
            s->queued.push_back({{"id", e.id}, {"from", e.sender}, {"rcpts", rc}, {"size", e.size},
                                 {"created", log::iso_timestamp(e.created_ms)}, {"client_ip", e.client_ip},
                                 {"auth_user", e.auth_user}});
            s->queued_ids.push_back(e.id);
            return true;
          });
          if (!r) s->error = r.error().message;
          r = s->spool->for_each_suppression([&](const std::string& a, const std::string& j) {
            if (a != s->address) return;
            auto v = json::parse(j, nullptr, false);
            if (v.is_object()) s->suppressions.push_back(std::move(v));
          });
          if (!r) s->error = r.error().message;
          if (s->event_file && s->error.empty()) {
            auto n = s->event_file->remove_lines(
                [&](std::string_view line) { return privacy::event_line_names(line, s->address); });
            if (n) s->file_lines = *n;
            else s->error = n.error().message;
          }
        } catch (const std::exception& e) {
          s->error = std::string("internal error: ") + e.what();
        } catch (...) {
          s->error = "internal error";
        }
      },
      [](uv_work_t* w, int) {
        std::unique_ptr<Scan> s(static_cast<Scan*>(w->data));
        auto reply = s->reply;  // a copy: the body may move s->reply away before it throws
        auto internal = [&](const char* what) {
          log::error("control.internal_error", {{"cmd", s->cmd}, {"error", what}});
          reply({{"ok", false}, {"error", std::string("internal error: ") + what}});
        };
        try {
          Server& server = *s->server;
          auto fail = [&](const std::string& m) { s->reply({{"ok", false}, {"error", m}}); };
          if (!s->error.empty()) return fail(s->error);
          if (s->cmd == "log.search") return s->reply({{"ok", true}, {"result", s->events}});
          if (s->cmd == "privacy.export") {
            return s->reply({{"ok", true},
                             {"result",
                              {{"address", s->address},
                               {"events", s->events},
                               {"queued_messages", s->queued},
                               {"suppression", s->suppressions}}}});
          }
          // Erase.
          for (size_t i = 0; i < s->event_keys.size(); i += 1000) {
            auto req = std::make_unique<spool::WriteRequest>();
            std::vector<std::string> chunk(s->event_keys.begin() + long(i),
                                           s->event_keys.begin() + long(std::min(i + 1000, s->event_keys.size())));
            req->op = spool::DeleteLogEvents{std::move(chunk)};
            server.submit(std::move(req));
          }
          size_t deleted = 0, updated = 0;
          json busy = json::array();
          for (const auto& id : s->queued_ids) {
            auto r = server.delivery_->erase_address(id, s->address);
            if (!r)
              busy.push_back(id);
            else if (*r == "deleted")
              ++deleted;
            else
              ++updated;
          }
          auto keep_arg = json_field::get_bool(s->args, "keep_suppression");  // parse_request checked it
          bool keep = keep_arg && *keep_arg;
          size_t suppressions = 0;
          if (!keep && !s->suppressions.empty()) {
            server.unsuppress(s->address, [](Expected<void>) {});
            suppressions = 1;
          }
          log::info("privacy.erase", {{"address_hash", server.spool_->audit_hash(s->address)},
                                      {"events", s->event_keys.size()},
                                      {"file_lines", s->file_lines},
                                      {"messages_deleted", deleted},
                                      {"messages_updated", updated},
                                      {"suppressions", suppressions}});
          json result = {{"ok", true},
                    {"result",
                     {{"events_deleted", s->event_keys.size()},
                      {"file_lines_deleted", s->file_lines},
                      {"messages_deleted", deleted},
                      {"messages_updated", updated},
                      {"suppressions_removed", suppressions},
                      {"busy", busy}}}};
          // Answer once the deletions are committed, not merely submitted.
          server.after_commits([reply = std::move(s->reply), result = std::move(result)] { reply(result); });
        } catch (const std::exception& e) {
          internal(e.what());
        } catch (...) {
          internal("unknown exception");
        }
      });
}

}  // namespace ferry
