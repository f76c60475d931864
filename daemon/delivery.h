// The delivery manager: turns spooled messages into SMTP transactions.
//   delivery.cc      the active set, the scheduler loop, outcomes → spool
//   delivery_job.cc  one job: resolve, pick a host, connect or reuse, send
// Memory stays bounded with a large backlog: at most kMaxActive envelopes
// are in RAM; the rest wait in the spool's schedule index and are loaded
// by refill() as room frees up or as their retry time comes. Bodies are
// read from the spool only when a job starts.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "delivery_pool.h"
#include "dns/dns.h"
#include "msg/msg_dsn.h"
#include "net/net_timer.h"
#include "runtime.h"
#include "sched/sched.h"
#include "sched/sched_tls_fallback.h"
#include "smtp/smtp_envelope.h"
#include "smtp/smtp_reply.h"
#include "smtp_client.h"
#include "spool/spool.h"

namespace ferry {

class Server;

class DeliveryManager {
 public:
  static constexpr size_t kMaxActive = 20000;

  DeliveryManager(Server& server, spool::Spool& spool, std::unique_ptr<dns::Resolver> resolver,
                  std::shared_ptr<const Runtime> rt);
  ~DeliveryManager();

  void start();
  void set_runtime(std::shared_ptr<const Runtime> rt);
  // A message has just been committed to the spool.
  void enqueue(const smtp::Envelope& env);
  // Stops starting jobs; `done` runs once in-flight jobs and connections end.
  void shutdown(std::function<void()> done);
  void force_stop();

  // ferryctl: make deferred mail (one id, one domain, or all) due now.
  void flush(const std::string& id, const std::string& domain, std::function<void(Expected<uint64_t>)> done);
  // ferryctl: delete a message, or bounce it (DSN to the sender).
  Expected<void> remove(const std::string& id, bool bounce);
  size_t active() const { return active_.size(); }
  // privacy erase: drops `address` from a queued message (the whole message
  // when it is the sender or the only recipient), without logging it.
  // Returns "deleted", "updated", or an error (busy: being delivered now).
  Expected<std::string> erase_address(const std::string& id, const std::string& address);

 private:
  struct Active {
    smtp::Envelope env;
    int64_t disk_next = 0;   // next_attempt_ms as stored (the sched key)
    int outstanding = 0;     // destinations not yet finished this round
    int64_t retry_at = 0;    // earliest retry among deferred recipients (0: none)
    std::string subject;
  };
  struct Candidate {
    std::string host;
    std::string ip;
  };
  struct RunningJob {
    sched::Job job;
    std::string body;
    std::vector<Candidate> candidates;
    size_t next = 0;
    uint16_t port = 25;
    std::string last_error;
    std::string last_mx;          // host of the last connection tried, for the deferral event
    bool plaintext_retry = false;  // next connection: no STARTTLS (delivery.tls: may fallback)
    bool retried_fresh = false;
    bool eight_bit = false;  // from the one header scan in start_job
    const config::RouteConfig* route = nullptr;
  };

  // delivery.cc
  void add_active(const smtp::Envelope& env);
  void pump();
  void refill();
  void arm_refill(int64_t at_ms);
  void complete_job(uint64_t job_id, bool connection_failed, const std::vector<smtp::Reply>& replies,
                    const std::string& mx, const std::string& tls);
  void defer_without_attempt(const sched::Job& job, const smtp::Reply& why);
  void apply_outcomes(Active& a, const sched::Job& job, const std::vector<smtp::Reply>& replies,
                      const std::string& mx, const std::string& tls, bool attempted,
                      const std::string& body);
  void finish_destination(const std::string& msg_id);
  void send_dsn(const Active& a, const std::vector<msg::DsnRecipient>& rcpts, const std::string& body);
  std::string destination_of(const std::string& rcpt) const;
  int64_t now() const;
  void maybe_done();
  void quarantine(const std::string& id, int64_t next_attempt_ms);
  void purge_log();

  // delivery_job.cc
  void start_job(sched::Job job);
  void resolved(uint64_t job_id, dns::MxResult r);
  void try_next(uint64_t job_id);
  void run_txn(uint64_t job_id, SmtpClient* client, bool reused);
  void fail_job_now(uint64_t job_id, const smtp::Reply& r, bool connection_failed);
  SmtpClient* new_client(const std::string& host, const config::RouteConfig* route, bool plaintext);
  bool tls_may_fall_back(const config::RouteConfig* route) const;
  void tls_fallback(RunningJob& rj, const Candidate& c, const std::string& error);
  void client_closed(SmtpClient* c);
  ClientSettings client_settings(const config::RouteConfig* route) const;

  Server& server_;
  spool::Spool& spool_;
  std::unique_ptr<dns::Resolver> resolver_;
  std::shared_ptr<const Runtime> rt_;
  sched::Scheduler sched_;
  ConnectionPool pool_;
  sched::TlsFallbackMemory tls_fallback_;  // MX hosts (host:port) sent plaintext for now
  std::unordered_map<std::string, Active> active_;
  std::map<uint64_t, std::unique_ptr<RunningJob>> jobs_;
  std::map<SmtpClient*, std::unique_ptr<SmtpClient>> clients_;
  uint64_t next_client_id_ = 1;
  net::Timer sched_timer_;
  net::Timer refill_timer_;
  net::Timer purge_timer_;
  int64_t refill_at_ = 0;
  bool backlog_on_disk_ = false;
  bool stopping_ = false;
  std::function<void()> on_done_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace ferry
