// See delivery.h: the active set, the scheduler loop and what an outcome
// does to the spool (recipient states, retry time, delivery-log events,
// DSNs). Every recipient ends delivered, bounced or expired, with an event.
#include "delivery.h"

#include <fmt/format.h>

#include "delivery_log.h"
#include "msg/msg_headers.h"
#include "server.h"
#include "util/assert.h"
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

// Does a delivery-log event name one of `addresses` (lower-cased)?
bool names_any(const spool::LogEvent& e, const std::vector<std::string>& addresses) {
  if (addresses.empty()) return false;
  std::string json = to_lower(e.json);
  for (const auto& a : addresses)
    if (json.find(a) != std::string::npos) return true;
  return false;
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
      purge_timer_(server.loop(), [this] { purge_log(); }),
      resave_timer_(server.loop(), [this] { resave(); }) {}

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

void DeliveryManager::quarantine(const std::string& id, int64_t next_attempt_ms,
                                 std::function<void(spool::WriteRequest&)> then) {
  auto req = std::make_unique<spool::WriteRequest>();
  req->op = spool::QuarantineMessage{id, next_attempt_ms};
  req->done = [id, then = std::move(then)](spool::WriteRequest& w) {
    if (!w.result) log::error("spool.quarantine_failed", {{"id", id}, {"error", w.result.error().message}});
    if (then) then(w);
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
  // A refill may have loaded it between its commit and this call: one copy.
  if (active_.count(env.id)) return;
  Active a;
  a.env = env;
  a.disk_next = env.next_attempt_ms;
  a.gen = ++gen_;
  std::map<std::string, std::vector<uint32_t>> by_dest;
  for (uint32_t i = 0; i < env.rcpts.size(); ++i)
    if (env.rcpts[i].state == smtp::RcptState::pending) by_dest[destination_of(env.rcpts[i].address)].push_back(i);
  if (by_dest.empty()) return;  // nothing left to do (should not be in the spool)
  int64_t ready = std::max(now(), env.next_attempt_ms);
  for (auto& [dest, idx] : by_dest) sched_.enqueue(env.id, dest, std::move(idx), ready, a.gen);
  a.outstanding = int(by_dest.size());
  active_.emplace(env.id, std::move(a));
}

DeliveryManager::Active* DeliveryManager::current(const sched::Job& job) {
  auto it = active_.find(job.msg_id);
  if (it == active_.end() || it->second.parked || it->second.gen != job.tag) return nullptr;
  return &it->second;
}

Expected<DeliveryManager::Active*> DeliveryManager::hold(const std::string& id) {
  auto it = active_.find(id);
  if (it != active_.end()) {
    // Deleted, or every recipient final with that write still committing.
    if (it->second.deleted || it->second.gone || spool::all_final(it->second.env))
      return Error(Errc::not_found, "no such message: " + id);
    return &it->second;
  }
  auto e = spool_.get_envelope(id);
  if (!e) return Error(e.error().code, e.error().code == Errc::not_found ? "no such message: " + id : e.error().message);
  Active a;
  a.disk_next = e->next_attempt_ms;
  a.env = std::move(*e);
  a.gen = ++gen_;
  a.parked = true;  // no scheduler items: it only waits for the change to commit
  return &active_.emplace(id, std::move(a)).first->second;
}

void DeliveryManager::pump() {
  if (stopping_) return;
  // A job made for an older copy of its message is dropped and its slot
  // freed; poll again so the next job waiting for that slot starts now
  // (bounded: a long run of stale jobs continues on the next tick).
  for (int round = 0;; ++round) {
    auto d = sched_.poll(now());
    for (auto& job : d.defer)
      defer_without_attempt(job, smtp::reply(451, "4.4.1", "destination suspended after repeated connection failures"));
    bool dropped = false;
    for (auto& job : d.start) {
      if (!current(job)) {
        sched_.release(job);
        dropped = true;
        continue;
      }
      start_job(std::move(job));
    }
    if (dropped && round < 16) continue;
    if (dropped)
      sched_timer_.start(1);
    else if (d.wake_at)
      sched_timer_.start(uint64_t(std::max<int64_t>(1, *d.wake_at - now())));
    return;
  }
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
        // Active ones (parked ones included, whose newer state is still on
        // its way to disk) are skipped: memory is the copy that counts.
        add_active(env);
        return true;
      },
      [&](const std::string& id, int64_t next) { unreadable.emplace_back(id, next); });
  for (const auto& [id, next] : unreadable) {
    if (active_.count(id)) continue;
    log::error("spool.quarantined", {{"id", id}, {"error", "envelope cannot be read"}});
    quarantine(id, next);
  }
  if (!r) log::error("delivery.refill", {{"error", r.error().message}});
  backlog_on_disk_ = full;
  if (next_due) arm_refill(next_due);
  pump();
}

void DeliveryManager::arm_refill(int64_t at_ms) {
  if (stopping_) return;  // a timer armed now would hold the loop open
  if (refill_at_ != 0 && refill_at_ <= at_ms) return;
  refill_at_ = at_ms;
  refill_timer_.start(uint64_t(std::max<int64_t>(1, at_ms - now())));
}

void DeliveryManager::defer_without_attempt(const sched::Job& job, const smtp::Reply& why) {
  Active* a = current(job);
  if (!a) return;  // queued for an older copy, or the message left
  std::vector<smtp::Reply> replies(job.rcpts.size(), why);
  end_destination(*a, record_outcomes(*a, job, replies, "", "", /*attempted=*/false, ""));
}

void DeliveryManager::complete_job(uint64_t job_id, bool connection_failed,
                                   const std::vector<smtp::Reply>& replies, const std::string& mx,
                                   const std::string& tls) {
  auto jit = jobs_.find(job_id);
  if (jit == jobs_.end()) return;
  std::unique_ptr<RunningJob> rj = std::move(jit->second);
  jobs_.erase(jit);
  sched_.finished(rj->job, connection_failed, now());
  // Admin changes wait for running jobs, so only a quarantine (another
  // destination's job found the body damaged) takes the message away.
  if (Active* a = current(rj->job))
    end_destination(*a, record_outcomes(*a, rj->job, replies, mx, tls, /*attempted=*/true, rj->body));
  else
    log::warn("delivery.outcome_dropped", {{"id", rj->job.msg_id}, {"why", "message left the queue"}});
  if (stopping_)
    maybe_done();
  else
    pump();
}

std::vector<spool::LogEvent> DeliveryManager::record_outcomes(Active& a, const sched::Job& job,
                                                              const std::vector<smtp::Reply>& replies,
                                                              const std::string& mx, const std::string& tls,
                                                              bool attempted, const std::string& body) {
  const auto& cfg = rt_->cfg;
  int64_t t = now();
  auto policy = sched_.policy();
  std::vector<spool::LogEvent> events;
  std::vector<msg::DsnRecipient> dsn;
  for (size_t k = 0; k < job.rcpts.size() && k < replies.size(); ++k) {
    FERRY_ASSERT(job.rcpts[k] < a.env.rcpts.size());
    auto& r = a.env.rcpts[job.rcpts[k]];
    if (r.state != smtp::RcptState::pending) continue;  // final already: never twice
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
  return events;
}

// One destination of this round is done. Its outcomes are written now, so
// that a crash does not deliver twice what was delivered; the last one also
// moves the schedule key (or, all final, deletes the message) and parks the
// message until that write commits.
void DeliveryManager::end_destination(Active& a, std::vector<spool::LogEvent> events) {
  FERRY_ASSERT(a.outstanding > 0);
  if (--a.outstanding == 0) {
    if (!spool::all_final(a.env))
      a.env.next_attempt_ms = a.retry_at ? a.retry_at : now() + sched_.policy().min_backoff_ms;
    a.parked = true;
  }
  save(a, std::move(events));
}

void DeliveryManager::save(Active& a, std::vector<spool::LogEvent> events, const char* failure) {
  if (a.unsaved) {
    // What a failed write carried goes with this one (it holds the whole
    // envelope, so the envelope part is made good by it anyway).
    events.insert(events.begin(), std::make_move_iterator(a.unsaved_events.begin()),
                  std::make_move_iterator(a.unsaved_events.end()));
    a.unsaved_events.clear();
    a.unsaved = false;
  }
  auto req = std::make_unique<spool::WriteRequest>();
  if (a.deleted) {
    if (!events.empty()) {
      auto log_req = std::make_unique<spool::WriteRequest>();
      log_req->op = spool::AppendLog{std::move(events)};
      server_.submit(std::move(log_req));
    }
    req->op = spool::DeleteMessage{a.env.id};
  } else {
    req->op = spool::UpdateMessage{a.env, a.disk_next, std::move(events)};
    a.disk_next = a.env.next_attempt_ms;
  }
  a.writes++;
  req->done = [this, id = a.env.id, failure](spool::WriteRequest& w) { written(id, w, failure); };
  server_.submit(std::move(req));
}

void DeliveryManager::written(const std::string& id, spool::WriteRequest& w, const char* failure) {
  auto it = active_.find(id);
  // Sanity checks: an entry with writes in flight never leaves memory.
  FERRY_ASSERT(it != active_.end());
  Active& a = it->second;
  FERRY_ASSERT(a.writes > 0);
  a.writes--;
  if (w.result) {
    resave_delay_ms_ = kResaveMinMs;
  } else if (w.result.error().code == Errc::not_found) {
    // Deleted by an earlier write: there is nothing left to update.
    if (!a.deleted) log::warn("delivery.message_gone", {{"id", id}});
    a.gone = true;
    a.parked = true;
  } else {
    bool retry = !stopping_ && !a.gone;
    log::error(failure, {{"id", id}, {"error", w.result.error().message}, {"retry", retry ? "yes" : "no"}});
    if (auto* u = std::get_if<spool::UpdateMessage>(&w.op))
      for (auto& e : u->events)
        if (!names_any(e, a.erased)) a.unsaved_events.push_back(std::move(e));
    a.unsaved = true;
    arm_resave();
  }
  settle(id);
}

// A parked message leaves memory once its writes have committed; if some
// recipients are still pending, a refill at their retry time brings it
// back from the spool.
void DeliveryManager::settle(const std::string& id) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  Active& a = it->second;
  if (!a.parked || a.writes > 0 || (a.unsaved && !a.gone && !stopping_)) return;
  bool pending = !a.gone && !a.deleted && !spool::all_final(a.env);
  int64_t next = a.env.next_attempt_ms;
  active_.erase(it);
  if (pending) arm_refill(next);
  if (backlog_on_disk_ && active_.size() < kMaxActive / 2) arm_refill(now());
}

void DeliveryManager::arm_resave() {
  if (stopping_ || resave_timer_.active()) return;
  resave_timer_.start(resave_delay_ms_);
  resave_delay_ms_ = std::min(resave_delay_ms_ * 2, kResaveMaxMs);
}

void DeliveryManager::resave() {
  if (stopping_) return;
  bool again = false;
  // A walk of the active set: failed writes are rare, and the flag on the
  // entry is the one record of what is owed (save() adds no entries).
  for (auto& [id, a] : active_) {
    if (!a.unsaved || a.gone) continue;
    if (a.writes > 0) {  // its pending write decides first
      again = true;
      continue;
    }
    log::info("delivery.spool_rewrite", {{"id", id}});
    save(a, {});
  }
  auto dsns = std::move(unsaved_dsns_);
  unsaved_dsns_.clear();
  for (auto& req : dsns) submit_dsn(std::move(req));
  if (again) arm_resave();
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
  submit_dsn(std::move(req));
}

// A DSN is owed as soon as the bounce is recorded: a failed insert (full
// disk) is kept in memory and made again, never dropped.
void DeliveryManager::submit_dsn(std::unique_ptr<spool::WriteRequest> req) {
  req->done = [this](spool::WriteRequest& w) {
    if (w.result) {
      enqueue(std::get<spool::InsertMessage>(w.op).envelope);
      return;
    }
    log::error("delivery.dsn_failed", {{"error", w.result.error().message}, {"retry", stopping_ ? "no" : "yes"}});
    if (stopping_) return;  // no disk and no time left: said above, at error level
    auto again = std::make_unique<spool::WriteRequest>();
    again->op = std::move(w.op);
    unsaved_dsns_.push_back(std::move(again));
    arm_resave();
  };
  server_.submit(std::move(req));
}

void DeliveryManager::flush(const std::string& id, const std::string& domain,
                            std::function<void(Expected<uint64_t>)> done) {
  int64_t t = now();
  bool found = id.empty();
  auto matches = [&](const smtp::Envelope& e) {
    if (domain.empty()) return true;
    for (const auto& rc : e.rcpts)
      if (rc.state == smtp::RcptState::pending && domain_of(rc.address) == domain) return true;
    return false;
  };
  // Waiting in the spool with a later retry time: loaded here (parked) and
  // made due, so the write is ordered with everything else done to it.
  std::vector<std::string> todo;
  auto r = spool_.for_each_scheduled([&](const smtp::Envelope& e) {
    if (!id.empty() && e.id != id) return true;
    found = true;
    if (!active_.count(e.id) && e.next_attempt_ms > t && matches(e)) todo.push_back(e.id);
    return true;
  });
  if (!r) return done(r.error());
  std::string dest = domain.empty() ? "" : destination_of("x@" + domain);
  auto dests = sched_.destinations();
  uint64_t count = 0;
  for (auto& [mid, a] : active_) {
    if ((!id.empty() && mid != id) || a.deleted || a.gone || spool::all_final(a.env) || !matches(a.env)) continue;
    found = true;
    if (a.parked) {
      // Deferred, its new retry time still on its way to disk.
      if (a.env.next_attempt_ms <= t) continue;
      a.env.next_attempt_ms = t;
      save(a, {}, "delivery.flush");
      ++count;
      continue;
    }
    // In memory behind a suspended destination: the revive below releases it.
    for (const auto& rc : a.env.rcpts) {
      if (rc.state != smtp::RcptState::pending) continue;
      auto d = dests.find(destination_of(rc.address));
      if (d != dests.end() && d->second.suspended_until > t && (dest.empty() || d->first == dest)) {
        ++count;
        break;
      }
    }
  }
  if (!found) return done(Error(Errc::not_found, "no such message: " + id));
  for (const auto& mid : todo) {
    auto a = hold(mid);
    if (!a) continue;  // gone meanwhile
    (*a)->env.next_attempt_ms = t;
    save(**a, {}, "delivery.flush");
    ++count;
  }
  sched_.revive(dest);
  // Answered once the new retry times are committed; the refill then finds them due.
  server_.after_commits([this, count, done] {
    refill();
    done(count);
  });
}

Expected<void> DeliveryManager::remove(const std::string& id, bool bounce) {
  for (const auto& [jid, rj] : jobs_)
    if (rj->job.msg_id == id)
      return Error(Errc::busy, "message " + id + " is being delivered right now; try again in a moment");
  auto held = hold(id);
  if (!held) return held.error();
  Active& a = **held;
  sched::Job job;
  job.msg_id = id;
  for (uint32_t i = 0; i < a.env.rcpts.size(); ++i)
    if (a.env.rcpts[i].state == smtp::RcptState::pending) job.rcpts.push_back(i);
  // Scheduler items still queued for it are dropped when they come up.
  a.parked = true;
  a.outstanding = 0;
  if (bounce) {
    auto body = spool_.get_body(id);
    std::vector<smtp::Reply> replies(job.rcpts.size(), smtp::reply(550, "5.0.0", "bounced by the administrator"));
    save(a, record_outcomes(a, job, replies, "", "", /*attempted=*/false, body ? *body : ""));
    return {};
  }
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
  a.deleted = true;
  save(a, std::move(events), "delivery.delete");
  return {};
}

Expected<std::string> DeliveryManager::erase_address(const std::string& id, const std::string& address) {
  for (const auto& [jid, rj] : jobs_)
    if (rj->job.msg_id == id) return Error(Errc::busy, "message " + id + " is being delivered right now");
  auto held = hold(id);
  if (!held) return held.error();
  Active& a = **held;
  // Its queued scheduler items index the old recipient list: dropped. The
  // refill after the commit loads what is left with fresh ones.
  a.parked = true;
  a.outstanding = 0;
  bool sender = iequals(a.env.sender, address);
  std::vector<smtp::EnvelopeRcpt> keep;
  for (auto& r : a.env.rcpts)
    if (!iequals(r.address, address)) keep.push_back(r);
  bool pending = false;
  for (const auto& r : keep) pending |= r.state == smtp::RcptState::pending;
  std::string what;
  if (sender || !pending) {
    a.deleted = true;
    what = "deleted";
  } else {
    a.env.rcpts = std::move(keep);
    what = "updated";
  }
  // Not logged: the erasure must not leave the address behind in new
  // events, nor in events of a failed write made again later.
  a.erased.push_back(to_lower(address));
  std::erase_if(a.unsaved_events, [&](const spool::LogEvent& e) { return names_any(e, a.erased); });
  save(a, {}, "privacy.erase_failed");
  return what;
}

void DeliveryManager::shutdown(std::function<void()> done) {
  stopping_ = true;
  on_done_ = std::move(done);
  sched_timer_.stop();
  refill_timer_.stop();
  purge_timer_.stop();
  resave_timer_.stop();
  pool_.quit_all();
  maybe_done();
}

// The shutdown timeout expired: connections are closed and jobs still
// waiting (on a connect, a lookup, a reply) are abandoned without an
// outcome. Their messages stay in the spool as they were and are tried
// again after the restart (one whose transaction had just completed may be
// delivered twice: only in-flight transactions can be).
void DeliveryManager::force_stop() {
  std::vector<SmtpClient*> all;
  for (auto& [p, c] : clients_) all.push_back(p);
  for (auto* c : all) c->quit();
  if (!jobs_.empty()) log::warn("delivery.jobs_abandoned", {{"jobs", jobs_.size()}});
  jobs_.clear();
  maybe_done();
}

void DeliveryManager::maybe_done() {
  if (!stopping_ || !jobs_.empty()) return;
  pool_.quit_all();
  if (!clients_.empty()) return;
  if (auto done = std::move(on_done_)) done();
}

}  // namespace ferry
