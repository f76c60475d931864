// See server.h.
#include "server.h"

#include <openssl/crypto.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "delivery.h"
#include "dns/dns_ares.h"
#include "smtp_session.h"
#include "util/log.h"
#include "util/strings.h"

namespace ferry {
namespace {
template <class H>
void close(H* h) {
  uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* x) { delete reinterpret_cast<H*>(x); });
}
}  // namespace

Server::Server(uv_loop_t* loop, std::shared_ptr<const Runtime> rt, std::unique_ptr<spool::Spool> spool)
    : loop_(loop), rt_(std::move(rt)), spool_(std::move(spool)) {}

Server::~Server() {
  delivery_.reset();
  if (writer_) writer_->stop();
}

void Server::queued(const smtp::Envelope& env) {
  if (delivery_) delivery_->enqueue(env);
}

void Server::accepted(const smtp::Envelope& env, const std::string& tls) {
  metrics_.received++;
  log::info("received", {{"id", env.id},
                         {"from", env.sender},
                         {"nrcpt", env.rcpts.size()},
                         {"size", env.size},
                         {"client_ip", env.client_ip},
                         {"auth_user", env.auth_user},
                         {"tls", tls},
                         {"listener", env.listener}});
  queued(env);
}

Expected<void> Server::start() {
  spool_async_ = new uv_async_t;
  uv_async_init(loop_, spool_async_, [](uv_async_t* a) { static_cast<Server*>(a->data)->on_spool_wakeup(); });
  spool_async_->data = this;
  writer_ = std::make_unique<spool::SpoolWriter>(*spool_, [this] { uv_async_send(spool_async_); });

  // Recovery: a restart finds every committed message by walking the
  // schedule index. Delivery picks them up from there.
  uint64_t recovered = 0, recipients = 0;
  if (auto r = spool_->for_each_scheduled([&](const smtp::Envelope& e) {
        ++recovered;
        recipients += e.rcpts.size();
        return true;
      });
      !r)
    return r.error();
  log::info("spool.recovered", {{"messages", recovered}, {"recipients", recipients},
                                {"path", rt_->cfg.spool.path}});

  if (auto r = spool_->for_each_suppression([&](const std::string& a, const std::string&) { suppressed_.insert(a); }); !r)
    return r.error();

  rebuild_limits();
  auto event_file = prepare_event_file(rt_->cfg);
  if (!event_file) return event_file.error();
  use_event_file(std::move(*event_file), rt_->cfg);

  std::vector<std::string> dns_servers;
  for (const auto& s : rt_->cfg.dns.servers) dns_servers.push_back(s.str());
  auto resolver = dns::make_ares_resolver(loop_, dns_servers);
  if (!resolver) return resolver.error();
  delivery_ = std::make_unique<DeliveryManager>(*this, *spool_, std::move(*resolver), rt_);
  delivery_->start();

  if (auto r = bind_listeners(rt_->cfg); !r) return r;
  started_ms_ = clock_.now_ms();
  auto control = ControlServer::listen(loop_, rt_->cfg.control.socket,
                                       [this](const nlohmann::json& req, ControlServer::Reply reply) {
                                         handle_control(req, std::move(reply));
                                       });
  if (!control) return control.error();
  control_ = std::move(*control);
  metrics_.writer = writer_.get();
  if (rt_->cfg.metrics.address) {
    auto ms = MetricsServer::start(rt_->cfg.metrics.address->host, rt_->cfg.metrics.address->port, metrics_);
    if (!ms) return ms.error();
    metrics_server_ = std::move(*ms);
  }
  // Queue gauges for /metrics and status: cheap reads (entry count, and
  // the oldest id, whose first 48 bits are its creation time).
  gauge_timer_ = new uv_timer_t;
  uv_timer_init(loop_, gauge_timer_);
  gauge_timer_->data = this;
  update_gauges();
  uv_timer_start(gauge_timer_, [](uv_timer_t* t) { static_cast<Server*>(t->data)->update_gauges(); }, 1000, 1000);

  // systemd's watchdog (WatchdogSec=): ping at half the interval from the
  // loop itself, so a wedged loop stops the pings and gets restarted.
  uint64_t wd_usec = 0;
  if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
    watchdog_timer_ = new uv_timer_t;
    uv_timer_init(loop_, watchdog_timer_);
    uv_timer_start(watchdog_timer_, [](uv_timer_t*) { sd_notify(0, "WATCHDOG=1"); }, 0, std::max<uint64_t>(1, wd_usec / 2000));
  }

  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    auto* h = new uv_signal_t;
    uv_signal_init(loop_, h);
    h->data = this;
    uv_signal_start(
        h,
        [](uv_signal_t* s, int signum) {
          auto* self = static_cast<Server*>(s->data);
          if (signum == SIGHUP)
            (void)self->reload();  // logs its own outcome
          else if (signum == SIGUSR1 && self->event_file_)
            self->event_file_->reopen();  // logs log.reopen
          else if (signum == SIGUSR1)
            // Other logs go to stderr (journald or a supervisor owns the
            // file): acknowledge for logrotate scripts.
            log::info("log.reopen", {{"target", "stderr"}});
          else
            self->shutdown();
        },
        sig);
    signals_.push_back(h);
  }
  sd_notify(0, "READY=1");
  log::info("ferryd.ready", {{"version", FERRY_VERSION}});
  return {};
}

Expected<void> Server::bind_listeners(const config::Config& cfg) {
  // Keep sockets whose address is unchanged (no connection is dropped and no
  // port is briefly closed); bind new ones before dropping old ones, so a
  // failed bind leaves everything as it was.
  std::vector<BoundListener> next;
  for (const auto& lc : cfg.listeners) {
    BoundListener bl{lc, nullptr};
    // Port 0 (kernel-chosen) matches only the same listener name: two
    // ":0" listeners are different sockets.
    for (auto& old : listeners_)
      if (old.listener && old.cfg.address.str() == lc.address.str() &&
          (lc.address.port != 0 || old.cfg.name == lc.name))
        bl.listener = std::move(old.listener);
    if (!bl.listener) {
      auto l = net::Listener::bind(loop_, lc.address.host, lc.address.port,
                                   [this](uv_stream_t* s) { on_accept(s); });
      if (!l) {
        // Put back what we took, then fail.
        for (auto& n : next)
          for (auto& old : listeners_)
            if (!old.listener && old.cfg.address.str() == n.cfg.address.str() && n.listener &&
                (n.cfg.address.port != 0 || old.cfg.name == n.cfg.name))
              old.listener = std::move(n.listener);
        return Error(l.error().code, fmt::format("listener '{}': {}", lc.name, l.error().message));
      }
      bl.listener = std::move(*l);
      log::info("listener.bound", {{"name", lc.name}, {"address", bl.listener->bound_address()},
                                   {"tls", lc.tls == config::TlsMode::none       ? "none"
                                           : lc.tls == config::TlsMode::starttls ? "starttls"
                                                                                  : "implicit"}});
    }
    next.push_back(std::move(bl));
  }
  for (auto& old : listeners_)
    if (old.listener) log::info("listener.closed", {{"name", old.cfg.name}});
  listeners_ = std::move(next);
  return {};
}

void Server::on_accept(uv_stream_t* server) {
  // The listener is found by its socket: a reload may reorder or keep them.
  const config::ListenerConfig* lc = nullptr;
  for (const auto& bl : listeners_)
    if (bl.listener && bl.listener->handle() == server) lc = &bl.cfg;
  if (lc == nullptr) return;
  auto conn = net::Connection::accept(server);
  if (!conn) return;
  metrics_.connections++;
  uint64_t id = next_session_id_++;
  std::string ip = conn->peer_ip();
  auto session = std::make_unique<SmtpSession>(*this, id, std::move(conn), *lc, rt_);
  SmtpSession* s = session.get();
  sessions_.emplace(id, std::move(session));
  metrics_.sessions_open = sessions_.size();
  uint64_t& per = per_client_[ip];
  ++per;
  const auto& limits = rt_->cfg.limits;
  if (sessions_.size() > limits.max_connections) {
    log::warn("smtp.too_many_connections", {{"client", ip}, {"open", sessions_.size()}});
    s->refuse(smtp::reply(421, "4.7.0", rt_->cfg.server.hostname + " Too many connections, try again later"));
    return;
  }
  if (int64_t locked = auth_locked_ms(ip); locked > 0) {
    log::warn("smtp.auth_locked_out", {{"client", ip}, {"seconds_left", locked / 1000}});
    s->refuse(smtp::reply(421, "4.7.0", rt_->cfg.server.hostname +
                                            " Too many authentication failures from your address; try again later"));
    return;
  }
  if (!conn_client_->take(ip, 1, clock_.now_ms())) {
    log::warn("smtp.connection_rate", {{"client", ip}});
    s->refuse(smtp::reply(421, "4.7.0", rt_->cfg.server.hostname + " Too many connections from your address per minute"));
    return;
  }
  if (per > limits.max_connections_per_client) {
    log::warn("smtp.too_many_connections_from_client", {{"client", ip}, {"open", per}});
    s->refuse(smtp::reply(421, "4.7.0", rt_->cfg.server.hostname + " Too many connections from your address"));
    return;
  }
  s->start();
}

// Limiters survive a reload unless their settings changed, so a reload is
// no way to reset a client's budget.
void Server::rebuild_limits() {
  const auto& l = rt_->cfg.rate_limits;
  bool same = lockout_ && l.interval == limits_cfg_.interval && l.messages_per_user == limits_cfg_.messages_per_user &&
              l.recipients_per_user == limits_cfg_.recipients_per_user &&
              l.messages_per_client == limits_cfg_.messages_per_client &&
              l.recipients_per_client == limits_cfg_.recipients_per_client &&
              l.connections_per_minute == limits_cfg_.connections_per_minute &&
              l.auth_failures == limits_cfg_.auth_failures && l.auth_lockout == limits_cfg_.auth_lockout;
  if (same) return;
  limits_cfg_ = l;
  int64_t iv = l.interval.count();
  msg_user_ = std::make_unique<auth::RateLimiter>(l.messages_per_user, iv);
  rcpt_user_ = std::make_unique<auth::RateLimiter>(l.recipients_per_user, iv);
  msg_client_ = std::make_unique<auth::RateLimiter>(l.messages_per_client, iv);
  rcpt_client_ = std::make_unique<auth::RateLimiter>(l.recipients_per_client, iv);
  conn_client_ = std::make_unique<auth::RateLimiter>(l.connections_per_minute, 60'000);
  lockout_ = std::make_unique<auth::AuthLockout>(l.auth_failures, l.auth_lockout.count(), l.auth_lockout.count());
}

int64_t Server::limit_messages(const std::string& user, const std::string& ip) {
  int64_t t = clock_.now_ms();
  auto& r = user.empty() ? *msg_client_ : *msg_user_;
  const std::string& key = user.empty() ? ip : user;
  return r.take(key, 1, t) ? 0 : std::max<int64_t>(1, r.wait_ms(key, 1, t));
}

int64_t Server::limit_recipients(const std::string& user, const std::string& ip) {
  int64_t t = clock_.now_ms();
  auto& r = user.empty() ? *rcpt_client_ : *rcpt_user_;
  const std::string& key = user.empty() ? ip : user;
  return r.take(key, 1, t) ? 0 : std::max<int64_t>(1, r.wait_ms(key, 1, t));
}

void Server::auth_failed(const std::string& ip) { lockout_->failure(ip, clock_.now_ms()); }

int64_t Server::auth_locked_ms(const std::string& ip) const { return lockout_->locked_ms(ip, clock_.now_ms()); }

bool Server::suppressed(const std::string& address) const { return suppressed_.count(to_lower(address)) > 0; }

void Server::suppress(const std::string& address, const std::string& reason, std::function<void(Expected<void>)> done) {
  std::string a = to_lower(address);
  if (!suppressed_.insert(a).second) {
    if (done) done({});
    return;
  }
  nlohmann::json j = {{"address", a}, {"reason", reason}, {"ts", log::iso_timestamp(clock_.now_ms())}};
  auto req = std::make_unique<spool::WriteRequest>();
  req->op = spool::SetSuppression{a, j.dump(), false};
  req->done = [done](spool::WriteRequest& w) {
    if (done) done(w.result);
  };
  submit(std::move(req));
}

void Server::unsuppress(const std::string& address, std::function<void(Expected<void>)> done) {
  std::string a = to_lower(address);
  suppressed_.erase(a);
  auto req = std::make_unique<spool::WriteRequest>();
  req->op = spool::SetSuppression{a, "", true};
  req->done = [done](spool::WriteRequest& w) { done(w.result); };
  submit(std::move(req));
}

void Server::update_gauges() {
  if (event_file_) event_file_->tick(clock_.now_ms());  // rotation on a quiet day
  auto n = spool_->message_count();
  if (n) metrics_.queue_messages = *n;
  auto oldest = spool_->first_id();
  int64_t t = clock_.now_ms();
  metrics_.queue_oldest_age_s = (oldest && !oldest->empty()) ? uint64_t(std::max<int64_t>(0, t - id_time_ms(*oldest)) / 1000) : 0;
}

SmtpSession* Server::find_session(uint64_t id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second.get();
}

void Server::session_closed(uint64_t id, const std::string& client_ip) {
  auto it = per_client_.find(client_ip);
  if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
  sessions_.erase(id);
  metrics_.sessions_open = sessions_.size();
  if (shutting_down_) maybe_finish_shutdown();
}

void Server::on_spool_wakeup() {
  auto completed = writer_->take_completed();
  if (event_file_) {
    // Only committed events reach the file, in commit order, one write
    // per batch.
    std::string lines;
    auto add = [&](const std::vector<spool::LogEvent>& events) {
      for (const auto& e : events) {
        lines += e.json;
        lines += '\n';
      }
    };
    for (auto& req : completed) {
      if (!req->result) continue;
      if (auto* i = std::get_if<spool::InsertMessage>(&req->op)) add(i->events);
      else if (auto* u = std::get_if<spool::UpdateMessage>(&req->op)) add(u->events);
      else if (auto* a = std::get_if<spool::AppendLog>(&req->op)) add(a->events);
    }
    if (!lines.empty()) event_file_->append(lines, clock_.now_ms());
  }
  for (auto& req : completed)
    if (req->done) req->done(*req);
}

void Server::after_commits(std::function<void()> fn) {
  auto req = std::make_unique<spool::WriteRequest>();
  req->op = spool::AppendLog{};  // writes nothing; its commit is the barrier
  req->done = [fn = std::move(fn)](spool::WriteRequest&) { fn(); };
  submit(std::move(req));
}

Expected<std::shared_ptr<DailyFile>> Server::prepare_event_file(const config::Config& cfg) {
  const std::string& path = cfg.delivery_log.file;
  if (path.empty()) return std::shared_ptr<DailyFile>();
  if (event_file_ && event_file_->path() == path) return event_file_;
  auto f = std::make_shared<DailyFile>(path, cfg.delivery_log.retention.count());
  if (auto r = f->open(clock_.now_ms()); !r) return r.error();
  return f;
}

void Server::use_event_file(std::shared_ptr<DailyFile> f, const config::Config& cfg) {
  event_file_ = std::move(f);
  if (event_file_) {
    event_file_->set_retention(cfg.delivery_log.retention.count());
    event_file_->tick(clock_.now_ms());
  }
}

namespace {
struct VerifyWork {
  uv_work_t req;
  Server* server;
  uint64_t session_id;
  std::shared_ptr<const auth::UserDb> users;
  std::string user;
  std::string password;
  bool ok = false;
};
}  // namespace

void Server::verify_password(uint64_t session_id, std::shared_ptr<const auth::UserDb> users,
                             std::string user, std::string password) {
  auto* w = new VerifyWork{{}, this, session_id, std::move(users), std::move(user), std::move(password)};
  w->req.data = w;
  uv_queue_work(
      loop_, &w->req,
      [](uv_work_t* r) {
        auto* w = static_cast<VerifyWork*>(r->data);
        w->ok = w->users->verify(w->user, w->password);
        OPENSSL_cleanse(w->password.data(), w->password.size());
      },
      [](uv_work_t* r, int) {
        std::unique_ptr<VerifyWork> w(static_cast<VerifyWork*>(r->data));
        if (SmtpSession* s = w->server->find_session(w->session_id)) s->on_auth_result(w->ok, w->user);
      });
}

Expected<void> Server::reload() {
  sd_notify(0, "RELOADING=1");
  auto failed = [this](const Error& e) -> Expected<void> {
    metrics_.reloads_failed++;
    log::error("reload.failed", {{"error", e.message}});
    sd_notify(0, "READY=1");
    return e;
  };
  auto cfg = config::load_file(rt_->cfg.file);
  if (!cfg) return failed(cfg.error());
  if (cfg->spool.path != rt_->cfg.spool.path)
    log::warn("reload.ignored", {{"key", "spool.path"}, {"why", "needs a restart"}});
  auto rt = build_runtime(std::move(*cfg));
  if (!rt) return failed(rt.error());
  auto event_file = prepare_event_file((*rt)->cfg);  // before anything changes
  if (!event_file) return failed(event_file.error());
  if (auto r = bind_listeners((*rt)->cfg); !r) return failed(r.error());
  use_event_file(std::move(*event_file), (*rt)->cfg);
  log::configure((*rt)->cfg.logging.format, (*rt)->cfg.logging.level);
  rt_ = *rt;  // sessions already open keep the snapshot they started with
  rebuild_limits();
  if (delivery_) delivery_->set_runtime(rt_);
  metrics_.reloads_ok++;
  log::info("reload.ok", {{"file", rt_->cfg.file}, {"listeners", listeners_.size()}});
  sd_notify(0, "READY=1");
  return {};
}

void Server::shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  sd_notify(0, "STOPPING=1");
  log::info("ferryd.stopping", {{"sessions", sessions_.size()}});
  listeners_.clear();  // stop accepting
  control_.reset();
  std::vector<uint64_t> ids;
  for (auto& [id, s] : sessions_) ids.push_back(id);
  for (uint64_t id : ids)
    if (SmtpSession* s = find_session(id)) s->shutdown();
  shutdown_timer_ = new uv_timer_t;
  uv_timer_init(loop_, shutdown_timer_);
  shutdown_timer_->data = this;
  // server.shutdown_timeout is a hard bound: when it expires, sessions and
  // delivery are cut off; whatever still holds on after a short grace is
  // left behind and the loop is stopped. The spool is the truth: undelivered
  // mail stays queued for the next start.
  uv_timer_start(
      shutdown_timer_, [](uv_timer_t* t) { static_cast<Server*>(t->data)->on_shutdown_timeout(); },
      uint64_t(rt_->cfg.server.shutdown_timeout.count()), 0);
  if (delivery_) {
    delivery_->shutdown([this] {
      delivery_done_ = true;
      maybe_finish_shutdown();
    });
  } else {
    delivery_done_ = true;
  }
  maybe_finish_shutdown();
}

void Server::on_shutdown_timeout() {
  if (shutdown_forced_) {
    log::error("ferryd.shutdown_forced", {{"sessions", sessions_.size()}, {"delivery_done", delivery_done_}});
    maybe_finish_shutdown(/*force=*/true);
    return;
  }
  shutdown_forced_ = true;
  log::warn("ferryd.shutdown_timeout", {{"sessions", sessions_.size()}});
  std::vector<SmtpSession*> open;
  for (auto& [id, s] : sessions_) open.push_back(s.get());
  for (auto* s : open) s->force_close();
  if (delivery_) delivery_->force_stop();
  if (shutdown_timer_)  // not finished by the above
    uv_timer_start(
        shutdown_timer_, [](uv_timer_t* t) { static_cast<Server*>(t->data)->on_shutdown_timeout(); },
        kForcedExitGraceMs, 0);
}

void Server::maybe_finish_shutdown(bool force) {
  if (spool_async_ == nullptr) return;
  if (!force && (!sessions_.empty() || !delivery_done_)) return;
  writer_->stop();       // every submitted commit has returned
  on_spool_wakeup();     // and its waiters are answered (none left)
  if (shutdown_timer_) {
    close(shutdown_timer_);
    shutdown_timer_ = nullptr;
  }
  if (watchdog_timer_) {
    uv_timer_stop(watchdog_timer_);
    close(watchdog_timer_);
    watchdog_timer_ = nullptr;
  }
  if (gauge_timer_) {
    uv_timer_stop(gauge_timer_);
    close(gauge_timer_);
    gauge_timer_ = nullptr;
  }
  metrics_server_.reset();
  close(spool_async_);
  spool_async_ = nullptr;
  for (auto* s : signals_) close(s);
  signals_.clear();
  auto st = writer_->stats();
  log::info("ferryd.stopped", {{"accepted", metrics_.received.load()},
                               {"spool_commits", st.batches},
                               {"spool_writes", st.requests},
                               {"max_batch", st.max_batch},
                               {"commit_ms_total", st.commit_us_total / 1000}});
  if (force) {
    // Connects, lookups and thread-pool work still pending would call back
    // into objects that unwinding frees. Every submitted write has been
    // committed above: the spool is the truth, so leave now.
    std::fflush(stderr);
    _exit(0);
  }
}

}  // namespace ferry
