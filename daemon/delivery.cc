// See delivery.h: the active set, the scheduler loop and what an outcome
// does to the spool (recipient states, retry time, delivery-log events,
// DSNs). Every recipient ends delivered, bounced or expired, with an event.
#include "delivery.h"

#include <fmt/format.h>

#include "delivery_log.h"
#include "msg/msg_headers.h"
#include "server.h"
#include "util/log.h"
#include "util/strings.h"

namespace ferry {

namespace {
sched::Policy policy_of(const config::Config& c) {
  sched::Policy p;
  p.max_window = int(c.delivery.connections_per_destination);
  p.initial_window = std::min(5, p.max_window);
  p.min_backoff_ms = c.delivery.retry.min_backoff.count();
  p.max_backoff_ms = c.delivery.retry.max_backoff.count();
  p.max_lifetime_ms = c.delivery.retry.max_lifetime.count();
  p.suspend_ms = std::min<int64_t>(p.min_backoff_ms, 5 * 60'000);
  return p;
}

std::string domain_of(const std::string& addr) {
  size_t at = addr.rfind('@');
  return at == std::string::npos ? "" : to_lower(addr.substr(at + 1));
}

bool wants_failure_dsn(const smtp::EnvelopeRcpt& r) {
  return r.notify == 0 || (r.notify & smtp::kNotifyFailure);
}
}  // namespace

DeliveryManager::DeliveryManager(Server& server, spool::Spool& spool,
                                 std::unique_ptr<dns::Resolver> resolver,
                                 std::shared_ptr<const Runtime> rt)
    : server_(server),
      spool_(spool),
      resolver_(std::move(resolver)),
      rt_(std::move(rt)),
      sched_(policy_of(rt_->cfg)),
      pool_(server.loop()),
      sched_timer_(server.loop(), [this] { pump(); }),
      refill_timer_(server.loop(), [this] {
        refill_at_ = 0;
        refill();
      }),
      purge_timer_(server.loop(), [this] { purge_log(); }) {}

DeliveryManager::~DeliveryManager() {
  pool_.quit_all();
  // Clients still registered are closed with the loop; their callbacks
  // find no job any more.
  jobs_.clear();
}

int64_t DeliveryManager::now() const { return server_.clock().now_ms(); }

void DeliveryManager::set_runtime(std::shared_ptr<const Runtime> rt) {
  rt_ = std::move(rt);
  sched_.set_policy(policy_of(rt_->cfg));
}

void DeliveryManager::start() {
  refill();
  purge_log();
}

void DeliveryManager::quarantine(const std::string& id, int64_t next_attempt_ms) {
  auto req = std::make_unique<spool::WriteRequest>();
  req->op = spool::QuarantineMessage{id, next_attempt_ms};
  req->done = [id](spool::WriteRequest& w) {
    if (!w.result) log::error("spool.quarantine_failed", {{"id", id}, {"error", w.result.error().message}});
  };
  server_.submit(std::move(req));
}

// delivery_log.retention: events older than it are deleted in batches of
// 1000, one batch per spool commit, so purging a large backlog never holds
// up the submissions that share the writer. A full batch means more is
// waiting: the next one follows at once; otherwise check again later.
void DeliveryManager::purge_log() {
  if (stopping_) return;
  int64_t retention = rt_->cfg.delivery_log.retention.count();
  auto req = std::make_unique<spool::WriteRequest>();
  req->op = spool::PurgeLog{now() - retention, 1000, 0};
  req->done = [this, retention](spool::WriteRequest& w) {
    auto& p = std::get<spool::PurgeLog>(w.op);
    if (!w.result) log::error("delivery_log.purge", {{"error", w.result.error().message}});
    if (p.purged > 0) log::info("delivery_log.purged", {{"events", p.purged}});
    uint64_t next = p.purged == p.limit ? 1 : uint64_t(std::clamp<int64_t>(retention / 10, 1000, 60'000));
    if (!stopping_) purge_timer_.start(next);
  };
  server_.submit(std::move(req));
}

std::string DeliveryManager::destination_of(const std::string& rcpt) const {
  std::string d = domain_of(rcpt);
  for (const auto& r : rt_->cfg.delivery.routes)
    if (r.domain == "*" || iequals(r.domain, d)) return "route:" + r.host.str();
  return d;
}

void DeliveryManager::enqueue(const smtp::Envelope& env) {
  if (stopping_) return;
  if (active_.size() >= kMaxActive) {
    // Stays on disk; refill() picks it up when there is room.
    backlog_on_disk_ = true;
    return;
  }
  add_active(env);
  pump();
}

void DeliveryManager::add_active(const smtp::Envelope& env) {
  Active a;
  a.env = env;
  a.disk_next = env.next_attempt_ms;
  std::map<std::string, std::vector<uint32_t>> by_dest;
  for (uint32_t i = 0; i < env.rcpts.size(); ++i)
    if (env.rcpts[i].state == smtp::RcptState::pending) by_dest[destination_of(env.rcpts[i].address)].push_back(i);
  if (by_dest.empty()) return;  // nothing left to do (should not be in the spool)
  int64_t ready = std::max(now(), env.next_attempt_ms);
  for (auto& [dest, idx] : by_dest) sched_.enqueue(env.id, dest, std::move(idx), ready);
  a.outstanding = int(by_dest.size());
  active_.emplace(env.id, std::move(a));
}

void DeliveryManager::pump() {
  if (stopping_) return;
  auto d = sched_.poll(now());
  for (auto& job : d.defer)
    defer_without_attempt(job, smtp::reply(451, "4.4.1", "destination suspended after repeated connection failures"));
  for (auto& job : d.start) start_job(std::move(job));
  if (d.wake_at) sched_timer_.start(uint64_t(std::max<int64_t>(1, *d.wake_at - now())));
}

void DeliveryManager::refill() {
  if (stopping_) return;
  int64_t t = now();
  int64_t next_due = 0;
  bool full = false;
  std::vector<std::pair<std::string, int64_t>> unreadable;
  auto r = spool_.for_each_scheduled(
      [&](const smtp::Envelope& env) {
        if (env.next_attempt_ms > t) {
          next_due = env.next_attempt_ms;
          return false;  // the index is in time order: nothing later is due
        }
        if (active_.size() >= kMaxActive) {
          full = true;
          return false;
        }
        if (!active_.count(env.id)) add_active(env);
        return true;
      },
      [&](const std::string& id, int64_t next) { unreadable.emplace_back(id, next); });
  for (const auto& [id, next] : unreadable) {
    log::error("spool.quarantined", {{"id", id}, {"error", "envelope cannot be read"}});
    quarantine(id, next);
  }
  if (!r) log::error("delivery.refill", {{"error", r.error().message}});
  backlog_on_disk_ = full;
  if (next_due) arm_refill(next_due);
  pump();
}

void DeliveryManager::arm_refill(int64_t at_ms) {
  if (refill_at_ != 0 && refill_at_ <= at_ms) return;
  refill_at_ = at_ms;
  refill_timer_.start(uint64_t(std::max<int64_t>(1, at_ms - now())));
}

void DeliveryManager::defer_without_attempt(const sched::Job& job, const smtp::Reply& why) {
  auto it = active_.find(job.msg_id);
  if (it == active_.end()) return;
  std::vector<smtp::Reply> replies(job.rcpts.size(), why);
  apply_outcomes(it->second, job, replies, "", "", /*attempted=*/false, "");
  finish_destination(job.msg_id);
}

void DeliveryManager::complete_job(uint64_t job_id, bool connection_failed,
                                   const std::vector<smtp::Reply>& replies, const std::string& mx,
                                   const std::string& tls) {
  auto jit = jobs_.find(job_id);
  if (jit == jobs_.end()) return;
  std::unique_ptr<RunningJob> rj = std::move(jit->second);
  jobs_.erase(jit);
  sched_.finished(rj->job, connection_failed, now());
  auto it = active_.find(rj->job.msg_id);
  if (it != active_.end()) {
    apply_outcomes(it->second, rj->job, replies, mx, tls, /*attempted=*/true, rj->body);
    finish_destination(rj->job.msg_id);
  }
  if (stopping_)
    maybe_done();
  else
    pump();
}

void DeliveryManager::apply_outcomes(Active& a, const sched::Job& job, const std::vector<smtp::Reply>& replies,
                                     const std::string& mx, const std::string& tls, bool attempted,
                                     const std::string& body) {
  const auto& cfg = rt_->cfg;
  int64_t t = now();
  auto policy = sched_.policy();
  std::vector<spool::LogEvent> events;
  std::vector<msg::DsnRecipient> dsn;
  for (size_t k = 0; k < job.rcpts.size() && k < replies.size(); ++k) {
    auto& r = a.env.rcpts[job.rcpts[k]];
    const smtp::Reply& rep = replies[k];
    if (attempted) r.attempts++;
    r.last_code = rep.code;
    r.last_response = rep.summary();
    EventInfo ev;
    ev.ts_ms = t;
    ev.env = &a.env;
    ev.rcpt = r.address;
    ev.subject = cfg.delivery_log.subject ? a.subject : "";
    ev.mx = mx;
    ev.tls = tls;
    ev.reply = &rep;
    ev.attempt = r.attempts;
    auto& m = server_.metrics();
    if (rep.positive()) {
      m.delivered++;
      r.state = smtp::RcptState::delivered;
      ev.event = "delivered";
    } else if (rep.permanent()) {
      m.bounced++;
      // A hard bounce for the address itself (5.1.x): stop sending to it.
      if (cfg.suppression.automatic && rep.enhanced.rfind("5.1.", 0) == 0)
        server_.suppress(r.address, rep.summary());
      r.state = smtp::RcptState::bounced;
      ev.event = "bounced";
      if (wants_failure_dsn(r))
        dsn.push_back({r.address, r.orcpt, "failed", rep.enhanced.empty() ? "5.0.0" : rep.enhanced, mx,
                       rep.summary()});
    } else if (sched::expired(a.env.created_ms, t, policy)) {
      m.expired++;
      r.state = smtp::RcptState::expired;
      ev.event = "expired";
      if (wants_failure_dsn(r))
        dsn.push_back({r.address, r.orcpt, "failed", "4.4.7", mx,
                       "delivery time expired; last error: " + rep.summary()});
    } else {
      m.deferred++;
      ev.event = "deferred";
      int64_t next = sched::next_attempt(a.env.created_ms, t, policy, rng_());
      a.retry_at = a.retry_at == 0 ? next : std::min(a.retry_at, next);
    }
    events.push_back(log_event(ev));
  }
  if (!dsn.empty() && !a.env.sender.empty()) send_dsn(a, dsn, body);
  // Persist now, so that a crash does not deliver twice what was delivered.
  // The schedule key moves only when the last destination is done.
  auto req = std::make_unique<spool::WriteRequest>();
  req->op = spool::UpdateMessage{a.env, a.disk_next, std::move(events)};
  req->done = [](spool::WriteRequest& w) {
    if (!w.result) log::error("delivery.spool_update", {{"error", w.result.error().message}});
  };
  server_.submit(std::move(req));
}

void DeliveryManager::finish_destination(const std::string& msg_id) {
  auto it = active_.find(msg_id);
  if (it == active_.end()) return;
  Active& a = it->second;
  if (--a.outstanding > 0) return;
  bool pending = false;
  for (const auto& r : a.env.rcpts) pending |= r.state == smtp::RcptState::pending;
  if (pending) {
    int64_t next = a.retry_at ? a.retry_at : now() + sched_.policy().min_backoff_ms;
    a.env.next_attempt_ms = next;
    auto req = std::make_unique<spool::WriteRequest>();
    req->op = spool::UpdateMessage{a.env, a.disk_next, {}};
    req->done = [](spool::WriteRequest& w) {
      if (!w.result) log::error("delivery.spool_update", {{"error", w.result.error().message}});
    };
    server_.submit(std::move(req));
    arm_refill(next);
  }
  active_.erase(it);  // deferred mail waits on disk, not in RAM
  if (backlog_on_disk_ && active_.size() < kMaxActive / 2) arm_refill(now());
}

void DeliveryManager::send_dsn(const Active& a, const std::vector<msg::DsnRecipient>& rcpts,
                               const std::string& job_body) {
  const auto& cfg = rt_->cfg;
  // Recipients deferred without an attempt (suspended destination) come
  // without a loaded body: the DSN still returns the original headers.
  std::string loaded;
  if (job_body.empty()) {
    auto b = spool_.get_body(a.env.id);
    if (b) loaded = std::move(*b);
  }
  const std::string& body = job_body.empty() ? loaded : job_body;
  smtp::Envelope env;
  env.id = server_.new_message_id();
  env.sender = "";  // DSNs go out with the null sender, so they never cause DSNs
  smtp::EnvelopeRcpt r;
  r.address = a.env.sender;
  env.rcpts.push_back(r);
  env.created_ms = now();
  env.next_attempt_ms = env.created_ms;
  env.listener = "dsn";
  msg::DsnInfo info;
  info.reporting_mta = cfg.server.hostname;
  info.to = a.env.sender;
  info.envid = smtp::xtext_decode(a.env.envid);
  info.arrival_ms = a.env.created_ms;
  info.now_ms = env.created_ms;
  info.message_id = env.id;
  info.boundary = env.id + "/" + cfg.server.hostname;
  info.return_full = a.env.ret == smtp::DsnRet::full;
  info.rcpts = rcpts;
  std::string text = msg::build_dsn(info, body);
  env.size = text.size();
  env.smtputf8 = !is_ascii(a.env.sender);
  EventInfo ev;
  ev.event = "received";
  ev.ts_ms = env.created_ms;
  ev.env = &env;
  ev.rcpt = a.env.sender;
  auto req = std::make_unique<spool::WriteRequest>();
  req->op = spool::InsertMessage{env, std::move(text), {log_event(ev)}};
  req->done = [this](spool::WriteRequest& w) {
    if (!w.result) {
      log::error("delivery.dsn_failed", {{"error", w.result.error().message}});
      return;
    }
    enqueue(std::get<spool::InsertMessage>(w.op).envelope);
  };
  server_.submit(std::move(req));
}

void DeliveryManager::flush(const std::string& id, const std::string& domain,
                            std::function<void(Expected<uint64_t>)> done) {
  std::vector<smtp::Envelope> todo;
  int64_t t = now();
  bool found = id.empty();
  auto r = spool_.for_each_scheduled([&](const smtp::Envelope& e) {
    if (!id.empty() && e.id != id) return true;
    found = true;
    if (active_.count(e.id) || e.next_attempt_ms <= t) return true;  // due already
    if (!domain.empty()) {
      bool match = false;
      for (const auto& rc : e.rcpts) match |= rc.state == smtp::RcptState::pending && domain_of(rc.address) == domain;
      if (!match) return true;
    }
    todo.push_back(e);
    return true;
  });
  if (!r) return done(r.error());
  if (!found) return done(Error(Errc::not_found, "no such message: " + id));
  sched_.revive(domain.empty() ? "" : destination_of("x@" + domain));
  uint64_t count = todo.size();
  if (count == 0) {
    refill();
    return done(uint64_t(0));
  }
  auto remaining = std::make_shared<uint64_t>(count);
  for (auto& e : todo) {
    int64_t old = e.next_attempt_ms;
    e.next_attempt_ms = t;
    auto req = std::make_unique<spool::WriteRequest>();
    req->op = spool::UpdateMessage{e, old, {}};
    req->done = [this, remaining, count, done](spool::WriteRequest& w) {
      if (!w.result) log::error("delivery.flush", {{"error", w.result.error().message}});
      if (--*remaining > 0) return;
      refill();
      done(count);
    };
    server_.submit(std::move(req));
  }
}

Expected<void> DeliveryManager::remove(const std::string& id, bool bounce) {
  for (const auto& [jid, rj] : jobs_)
    if (rj->job.msg_id == id)
      return Error(Errc::busy, "message " + id + " is being delivered right now; try again in a moment");
  Active a;
  auto it = active_.find(id);
  if (it != active_.end()) {
    a = it->second;
  } else {
    auto e = spool_.get_envelope(id);
    if (!e) return Error(e.error().code, e.error().code == Errc::not_found ? "no such message: " + id : e.error().message);
    a.env = std::move(*e);
    a.disk_next = a.env.next_attempt_ms;
  }
  sched::Job job;
  job.msg_id = id;
  for (uint32_t i = 0; i < a.env.rcpts.size(); ++i)
    if (a.env.rcpts[i].state == smtp::RcptState::pending) job.rcpts.push_back(i);
  if (bounce) {
    auto body = spool_.get_body(id);
    std::vector<smtp::Reply> replies(job.rcpts.size(), smtp::reply(550, "5.0.0", "bounced by the administrator"));
    apply_outcomes(a, job, replies, "", "", /*attempted=*/false, body ? *body : "");
  } else {
    std::vector<spool::LogEvent> events;
    smtp::Reply why = smtp::reply(0, "", "deleted by the administrator");
    for (uint32_t idx : job.rcpts) {
      EventInfo ev;
      ev.event = "deleted";
      ev.ts_ms = now();
      ev.env = &a.env;
      ev.rcpt = a.env.rcpts[idx].address;
      ev.reply = &why;
      events.push_back(log_event(ev));
    }
    auto log_req = std::make_unique<spool::WriteRequest>();
    log_req->op = spool::AppendLog{std::move(events)};
    server_.submit(std::move(log_req));
    auto del = std::make_unique<spool::WriteRequest>();
    del->op = spool::DeleteMessage{id};
    del->done = [id](spool::WriteRequest& w) {
      if (!w.result) log::error("delivery.delete", {{"id", id}, {"error", w.result.error().message}});
    };
    server_.submit(std::move(del));
  }
  // Queued scheduler items for it find no active entry and are dropped.
  active_.erase(id);
  return {};
}

Expected<std::string> DeliveryManager::erase_address(const std::string& id, const std::string& address) {
  for (const auto& [jid, rj] : jobs_)
    if (rj->job.msg_id == id) return Error(Errc::busy, "message " + id + " is being delivered right now");
  smtp::Envelope env;
  auto it = active_.find(id);
  int64_t disk_next;
  if (it != active_.end()) {
    env = it->second.env;
    disk_next = it->second.disk_next;
  } else {
    auto e = spool_.get_envelope(id);
    if (!e) return e.error();
    env = std::move(*e);
    disk_next = env.next_attempt_ms;
  }
  active_.erase(id);  // refill reloads what is left
  bool sender = iequals(env.sender, address);
  std::vector<smtp::EnvelopeRcpt> keep;
  for (auto& r : env.rcpts)
    if (!iequals(r.address, address)) keep.push_back(std::move(r));
  auto req = std::make_unique<spool::WriteRequest>();
  std::string what;
  bool pending = false;
  for (const auto& r : keep) pending |= r.state == smtp::RcptState::pending;
  if (sender || !pending) {
    req->op = spool::DeleteMessage{id};
    what = "deleted";
  } else {
    env.rcpts = std::move(keep);
    req->op = spool::UpdateMessage{env, disk_next, {}};
    what = "updated";
  }
  req->done = [id](spool::WriteRequest& w) {
    if (!w.result) log::error("privacy.erase_failed", {{"id", id}, {"error", w.result.error().message}});
  };
  server_.submit(std::move(req));
  return what;
}

void DeliveryManager::shutdown(std::function<void()> done) {
  stopping_ = true;
  on_done_ = std::move(done);
  sched_timer_.stop();
  refill_timer_.stop();
  purge_timer_.stop();
  pool_.quit_all();
  maybe_done();
}

void DeliveryManager::force_stop() {
  std::vector<SmtpClient*> all;
  for (auto& [p, c] : clients_) all.push_back(p);
  for (auto* c : all) c->quit();
}

void DeliveryManager::maybe_done() {
  if (!stopping_ || !jobs_.empty()) return;
  pool_.quit_all();
  if (!clients_.empty()) return;
  if (auto done = std::move(on_done_)) done();
}

}  // namespace ferry
