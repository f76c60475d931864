// The server: owns the loop's listeners, the open sessions, the spool and
// its writer thread, and the signal handlers. Wiring only: protocol rules
// live in lib/smtp and in the session.
#pragma once

#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "auth/auth_ratelimit.h"
#include "control.h"
#include "metrics.h"
#include "net/net_listener.h"
#include "runtime.h"
#include "spool/spool.h"
#include "spool/spool_writer.h"
#include "util/clock.h"
#include "util/daily_file.h"
#include "util/ids.h"

namespace ferry {

class SmtpSession;
class DeliveryManager;


class Server {
 public:
  Server(uv_loop_t* loop, std::shared_ptr<const Runtime> rt, std::unique_ptr<spool::Spool> spool);
  ~Server();

  // Binds listeners, recovers the spool, installs signal handlers.
  Expected<void> start();
  // Re-reads the config file; keeps the old one if the new one is invalid.
  Expected<void> reload();
  // Stops accepting and ends sessions (bounded by server.shutdown_timeout).
  void shutdown();

  uv_loop_t* loop() const { return loop_; }
  const Clock& clock() const { return clock_; }
  std::string new_message_id() { return ids_.next(clock_.now_ms()); }
  Metrics& metrics() { return metrics_; }

  void submit(std::unique_ptr<spool::WriteRequest> req) { writer_->submit(std::move(req)); }
  // Calls fn once everything submitted so far is committed (the writer
  // commits in submission order), so a control reply never runs ahead of
  // the change it reports.
  void after_commits(std::function<void()> fn);
  // A message is in the spool: hand it to delivery.
  void queued(const smtp::Envelope& env);
  // A message from a client is committed: count it, log it, queue it;
  // whether or not the client is still there for the 250.
  void accepted(const smtp::Envelope& env, const std::string& tls);
  // The suppression list, kept in memory for the RCPT check and persisted
  // in the spool.
  bool suppressed(const std::string& address) const;
  // Rate limits; each returns 0 when allowed, else the wait in ms.
  int64_t limit_messages(const std::string& user, const std::string& client_ip);
  int64_t limit_recipients(const std::string& user, const std::string& client_ip);
  void auth_failed(const std::string& client_ip);
  void auth_succeeded(const std::string& client_ip) { lockout_->success(client_ip); }
  int64_t auth_locked_ms(const std::string& client_ip) const;
  void suppress(const std::string& address, const std::string& reason, std::function<void(Expected<void>)> done = {});
  void unsuppress(const std::string& address, std::function<void(Expected<void>)> done);
  SmtpSession* find_session(uint64_t id);
  void session_closed(uint64_t id, const std::string& client_ip);
  // Runs user/password verification on the thread pool; calls back on the loop.
  void verify_password(uint64_t session_id, std::shared_ptr<const auth::UserDb> users,
                       std::string user, std::string password);

 private:
  struct BoundListener {
    config::ListenerConfig cfg;
    std::unique_ptr<net::Listener> listener;
  };
  void on_accept(uv_stream_t* server);
  void handle_control(const nlohmann::json& req, ControlServer::Reply reply);  // control_commands.cc
  void handle_privacy(const std::string& cmd, const nlohmann::json& args, ControlServer::Reply reply);  // privacy.cc
  void on_spool_wakeup();
  // delivery_log.file for a (new) config: the open file if its path is
  // unchanged, else a newly opened one (an error leaves everything as it
  // was), or none; use_event_file switches to it.
  Expected<std::shared_ptr<DailyFile>> prepare_event_file(const config::Config& cfg);
  void use_event_file(std::shared_ptr<DailyFile> f, const config::Config& cfg);
  Expected<void> bind_listeners(const config::Config& cfg);
  void maybe_finish_shutdown(bool force = false);
  void on_shutdown_timeout();

  uv_loop_t* loop_;
  std::shared_ptr<const Runtime> rt_;
  std::unique_ptr<spool::Spool> spool_;
  std::unique_ptr<spool::SpoolWriter> writer_;
  std::unique_ptr<DeliveryManager> delivery_;
  std::unique_ptr<ControlServer> control_;
  int64_t started_ms_ = 0;
  std::unordered_set<std::string> suppressed_;
  // Shared with a privacy erase running on the thread pool across a reload.
  std::shared_ptr<DailyFile> event_file_;
  void rebuild_limits();
  std::unique_ptr<auth::RateLimiter> msg_user_, rcpt_user_, msg_client_, rcpt_client_, conn_client_;
  std::unique_ptr<auth::AuthLockout> lockout_;
  decltype(config::Config::rate_limits) limits_cfg_{};
  bool delivery_done_ = false;
  uv_async_t* spool_async_ = nullptr;
  std::vector<uv_signal_t*> signals_;
  std::vector<BoundListener> listeners_;
  std::map<uint64_t, std::unique_ptr<SmtpSession>> sessions_;
  std::unordered_map<std::string, uint64_t> per_client_;
  uint64_t next_session_id_ = 1;
  bool shutting_down_ = false;
  uv_timer_t* shutdown_timer_ = nullptr;
  bool shutdown_forced_ = false;
  static constexpr uint64_t kForcedExitGraceMs = 2000;
  SystemClock clock_;
  IdGenerator ids_;
  Metrics metrics_;
  std::unique_ptr<MetricsServer> metrics_server_;
  uv_timer_t* gauge_timer_ = nullptr;
  uv_timer_t* watchdog_timer_ = nullptr;
  void update_gauges();
};

}  // namespace ferry
