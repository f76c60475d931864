// One delivery job (one message, one destination): load the body, resolve
// the destination (route or MX), then walk its hosts' addresses in order,
// reusing an idle connection when there is one, until a server has given a
// reply for every recipient or every address failed.
#include <fmt/format.h>

#include "delivery.h"
#include "msg/msg_headers.h"
#include "server.h"
#include "util/log.h"
#include "util/strings.h"

namespace ferry {

using smtp::reply;

namespace {
constexpr size_t kMaxCandidates = 10;  // addresses tried per attempt
constexpr size_t kMaxHops = 50;         // Received: headers before a loop is declared (RFC 5321 §6.3)

std::string encode_dsn_params(const smtp::EnvelopeRcpt& r) {
  std::string p;
  if (r.notify) {
    std::string n;
    if (r.notify & smtp::kNotifyNever) n = "NEVER";
    if (r.notify & smtp::kNotifySuccess) n += "SUCCESS";
    if (r.notify & smtp::kNotifyFailure) n += n.empty() ? "FAILURE" : ",FAILURE";
    if (r.notify & smtp::kNotifyDelay) n += n.empty() ? "DELAY" : ",DELAY";
    p += " NOTIFY=" + n;
  }
  if (!r.orcpt.empty()) p += " ORCPT=" + r.orcpt;
  return p;
}

// Idle connections are shared only by jobs that would have opened the same
// one: same address and port, same AUTH identity. A route's authenticated
// session must not carry unauthenticated mail, and a route with credentials
// must never inherit a plaintext session (e.g. a may fallback to that host).
std::string pool_key(const std::string& ip, uint16_t port, const config::RouteConfig* route) {
  std::string key = fmt::format("{}:{}", ip, port);
  if (route && !route->username.empty()) key += " auth=" + route->username;
  return key;
}
}  // namespace

ClientSettings DeliveryManager::client_settings(const config::RouteConfig* route) const {
  const auto& cfg = rt_->cfg;
  ClientSettings s;
  if (route && !route->username.empty()) {
    s.auth_user = route->username;
    auto it = rt_->route_passwords.find(route->host.str());
    if (it != rt_->route_passwords.end()) s.auth_password = it->second;
  }
  s.helo = cfg.server.hostname;
  s.tls = cfg.delivery.tls;
  s.tls_ctx = rt_->client_tls;
  s.connect_timeout_ms = uint64_t(cfg.delivery.connect_timeout.count());
  s.tls_counter = &server_.metrics().tls_out;
  return s;
}

void DeliveryManager::start_job(sched::Job job) {
  Active* a = current(job);
  if (!a) {  // queued for an older copy of the message, or it left the queue
    sched_.release(job);
    return;
  }
  auto rj = std::make_unique<RunningJob>();
  uint64_t id = job.id;
  rj->job = std::move(job);
  auto body = spool_.get_body(rj->job.msg_id);
  jobs_.emplace(id, std::move(rj));
  RunningJob& r = *jobs_.at(id);
  if (!body) {
    if (body.error().code == Errc::corrupt) {
      // Tampered, or sealed with a key we lack: never deliver it; keep it
      // aside for the admin and carry on with the rest of the queue.
      log::error("spool.quarantined", {{"id", r.job.msg_id}, {"error", body.error().message}});
      sched::Job job = r.job;
      jobs_.erase(id);
      sched_.release(job);
      // Out of the queue: its other destinations' items are dropped, and it
      // leaves memory once the move (and writes made before it) committed.
      a->gone = true;
      a->parked = true;
      a->writes++;
      quarantine(job.msg_id, a->disk_next, [this, mid = job.msg_id](spool::WriteRequest& w) {
        bool failed = !w.result && w.result.error().code != Errc::not_found;
        written(mid, w, "spool.quarantine_failed");
        // Still in the spool and due: the next refill finds it and tries again.
        if (failed) arm_refill(now() + kResaveMinMs);
      });
      return;
    }
    log::error("delivery.body_missing", {{"id", r.job.msg_id}, {"error", body.error().message}});
    return fail_job_now(id, reply(451, "4.3.0", "message body unavailable: " + body.error().message), false);
  }
  r.body = std::move(*body);
  auto headers = msg::scan_headers(r.body);
  a->subject = headers.subject;
  r.eight_bit = headers.eight_bit;
  if (headers.received > kMaxHops)
    return fail_job_now(id, reply(554, "5.4.6", fmt::format("mail loop: {} Received: headers", headers.received)), false);

  const std::string& dest = r.job.destination;
  if (dest.rfind("route:", 0) == 0) {
    for (const auto& route : rt_->cfg.delivery.routes)
      if ("route:" + route.host.str() == dest) r.route = &route;
    if (!r.route) {  // the route went away in a reload: deliver by MX next time
      return fail_job_now(id, reply(451, "4.3.0", "route removed by reload"), false);
    }
    r.port = r.route->host.port;
    resolver_->resolve_host(r.route->host.host, [this, id](dns::MxResult res) { resolved(id, std::move(res)); });
  } else {
    r.port = rt_->cfg.delivery.port;
    resolver_->resolve_mx(dest, [this, id](dns::MxResult res) { resolved(id, std::move(res)); });
  }
}

void DeliveryManager::resolved(uint64_t job_id, dns::MxResult res) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return;
  RunningJob& rj = *it->second;
  server_.metrics().dns_lookups++;
  if (res.status == dns::Status::transient || res.status == dns::Status::nxdomain) server_.metrics().dns_failures++;
  switch (res.status) {
    case dns::Status::null_mx:
      return fail_job_now(job_id, reply(556, "5.1.10", rj.job.destination + " does not accept mail (null MX)"), false);
    case dns::Status::nxdomain:
      return fail_job_now(job_id, reply(550, "5.1.2", res.error), false);
    case dns::Status::transient:
      return fail_job_now(job_id, reply(451, "4.4.3", res.error), false);
    case dns::Status::ok:
      break;
  }
  for (const auto& h : res.hosts)
    for (const auto& ip : h.addresses)
      if (rj.candidates.size() < kMaxCandidates) rj.candidates.push_back({h.name, ip});
  try_next(job_id);
}

void DeliveryManager::try_next(uint64_t job_id) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return;
  RunningJob& rj = *it->second;
  if (stopping_ || rj.next >= rj.candidates.size()) {
    std::string why = rj.last_error.empty() ? "no host could be reached" : rj.last_error;
    std::vector<smtp::Reply> replies(rj.job.rcpts.size(), reply(451, "4.4.1", why));
    // The deferral names the host last talked to (the events' mx field).
    return complete_job(job_id, /*connection_failed=*/!stopping_, replies, rj.last_mx, "");
  }
  const Candidate c = rj.candidates[rj.next++];
  bool plaintext = rj.plaintext_retry ||
                   (tls_may_fall_back(rj.route) && tls_fallback_.plaintext(fmt::format("{}:{}", c.host, rj.port), now()));
  rj.plaintext_retry = false;  // for this candidate only
  std::string key = pool_key(c.ip, rj.port, rj.route);
  if (SmtpClient* idle = pool_.take(key)) return run_txn(job_id, idle, true);
  SmtpClient* client = new_client(c.host, rj.route, plaintext);
  client->open(server_.loop(), c.ip, rj.port,
               [this, job_id, c](SmtpClient* cl, std::string error, bool) {
                 auto jit = jobs_.find(job_id);
                 if (jit == jobs_.end()) {  // abandoned (shutdown): a late connection is not kept
                   if (error.empty() && cl) cl->quit();
                   return;
                 }
                 RunningJob& rj = *jit->second;
                 if (!error.empty()) {
                   rj.last_error = error;
                   rj.last_mx = c.host;
                   log::info("delivery.connect_failed", {{"id", rj.job.msg_id}, {"mx", c.host}, {"error", error}});
                   if (cl->tls_failed() && tls_may_fall_back(rj.route)) tls_fallback(rj, c, error);
                   return try_next(job_id);
                 }
                 run_txn(job_id, cl, false);
               });
}

bool DeliveryManager::tls_may_fall_back(const config::RouteConfig* route) const {
  // encrypt/verify promise TLS, and credentials never travel in clear
  // (unless delivery.tls: none, where no STARTTLS is tried anyway).
  return rt_->cfg.delivery.tls == config::OutTls::may && !(route && !route->username.empty());
}

void DeliveryManager::tls_fallback(RunningJob& rj, const Candidate& c, const std::string& error) {
  // Opportunistic TLS must never cost the delivery: the same host again, at
  // once, without STARTTLS (as Postfix and Exim do), and remembered so the
  // next messages skip the doomed handshake (KumoMTA's remember_broken_tls).
  const auto ttl = rt_->cfg.delivery.tls_fallback_ttl;
  tls_fallback_.remember(fmt::format("{}:{}", c.host, rj.port), now(), int64_t(ttl.count()));
  server_.metrics().tls_fallbacks++;
  log::warn("delivery.tls_fallback", {{"id", rj.job.msg_id},
                                      {"mx", c.host},
                                      {"ip", c.ip},
                                      {"error", error},
                                      {"plaintext_for_ms", int64_t(ttl.count())}});
  rj.plaintext_retry = true;
  rj.next--;  // the same candidate again
}

SmtpClient* DeliveryManager::new_client(const std::string& host, const config::RouteConfig* route, bool plaintext) {
  ClientSettings s = client_settings(route);
  s.sni = host;
  s.skip_starttls = plaintext;
  auto c = std::make_unique<SmtpClient>(next_client_id_++, host, std::move(s),
                                        SmtpClient::Hooks{[this](SmtpClient* cl) { client_closed(cl); }});
  SmtpClient* p = c.get();
  clients_.emplace(p, std::move(c));
  return p;
}

void DeliveryManager::client_closed(SmtpClient* c) {
  pool_.forget(c);
  // Deleted later on the loop: this runs inside the client's own callback.
  auto it = clients_.find(c);
  if (it == clients_.end()) return;
  std::unique_ptr<SmtpClient> dying = std::move(it->second);
  clients_.erase(it);
  dying.release();  // the client deletes itself below
  auto* timer = new uv_timer_t;
  uv_timer_init(server_.loop(), timer);
  timer->data = c;
  uv_timer_start(timer, [](uv_timer_t* t) {
    delete static_cast<SmtpClient*>(t->data);
    uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }, 0, 0);
  if (stopping_) maybe_done();
}

void DeliveryManager::run_txn(uint64_t job_id, SmtpClient* client, bool reused) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    client->quit();
    return;
  }
  Active* a = current(it->second->job);
  if (!a) {  // quarantined while we connected: the job still has to end
    client->quit();
    return fail_job_now(job_id, reply(451, "4.3.0", "message left the queue"), false);
  }
  RunningJob& rj = *it->second;
  const smtp::Envelope& env = a->env;
  OutboundTxn tx;
  tx.sender = env.sender;
  for (uint32_t idx : rj.job.rcpts) {
    tx.rcpts.push_back(env.rcpts[idx].address);
    tx.rcpt_params.push_back(encode_dsn_params(env.rcpts[idx]));
  }
  if (env.ret == smtp::DsnRet::full) tx.mail_params += " RET=FULL";
  if (env.ret == smtp::DsnRet::hdrs) tx.mail_params += " RET=HDRS";
  if (!env.envid.empty()) tx.mail_params += " ENVID=" + env.envid;
  tx.body = &rj.body;
  tx.needs_smtputf8 = env.smtputf8;
  tx.eight_bit = env.body == smtp::BodyType::eightbitmime || rj.eight_bit;
  std::string key = pool_key(client->ip(), rj.port, rj.route);
  client->send(std::move(tx), [this, job_id, client, reused, key](TxnResult res) {
    auto jit = jobs_.find(job_id);
    if (jit == jobs_.end()) {  // abandoned (shutdown)
      client->quit();
      return;
    }
    RunningJob& rj = *jit->second;
    if (!res.completed) {
      rj.last_error = res.error;
      rj.last_mx = client->host_name();
      if (reused && !rj.retried_fresh) {
        // A cached connection may have been closed by the server while
        // idle: one more try on a fresh connection to the same host.
        rj.retried_fresh = true;
        rj.next--;
      }
      return try_next(job_id);
    }
    const auto& cfg = rt_->cfg;
    std::string mx = client->host_name(), tls = client->tls_version();
    if (client->usable() && client->messages() < cfg.delivery.messages_per_connection && !stopping_)
      pool_.put(key, client, uint64_t(cfg.delivery.idle_timeout.count()), cfg.delivery.connections_per_destination);
    else
      client->quit();
    complete_job(job_id, false, res.replies, mx, tls);
  });
}

void DeliveryManager::fail_job_now(uint64_t job_id, const smtp::Reply& r, bool connection_failed) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return;
  std::vector<smtp::Reply> replies(it->second->job.rcpts.size(), r);
  complete_job(job_id, connection_failed, replies, "", "");
}

}  // namespace ferry
