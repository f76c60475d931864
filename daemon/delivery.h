// The delivery manager: turns spooled messages into SMTP transactions.
//   delivery.cc      the active set, the scheduler loop, outcomes → spool
//   delivery_job.cc  one job: resolve, pick a host, connect or reuse, send
// Memory stays bounded with a large backlog: at most kMaxActive envelopes
// are in RAM; the rest wait in the spool's schedule index and are loaded
// by refill() as room frees up or as their retry time comes. Bodies are
// read from the spool only when a job starts.
// Ownership: a message is either active (in memory, the copy that counts)
// or waiting in the spool, never both. It leaves memory only once every
// write made for it has committed, so a refill never reads an older row
// and starts it again (that delivered deferred mail twice).
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
    smtp::Envelope env;      // as it is once every write submitted for it commits
    int64_t disk_next = 0;   // its sched key after those writes
    uint64_t gen = 0;        // tag of the scheduler items made for this copy
    int outstanding = 0;     // destinations not yet finished this round
    int64_t retry_at = 0;    // earliest retry among deferred recipients (0: none)
    std::string subject;
    int writes = 0;          // spool writes submitted, not yet committed
    bool parked = false;     // round over: leaves memory once `writes` is 0
    bool deleted = false;    // its last write deletes it (admin delete, erase)
    bool gone = false;       // the spool no longer has it: nothing to write
    bool unsaved = false;    // a write failed: written again before it leaves
    std::vector<spool::LogEvent> unsaved_events;
    std::vector<std::string> erased;  // privacy erase: never write events naming these
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
  // The in-memory copy of a queued message for an admin change: the active
  // one, or one loaded from the spool (parked, so it only waits for the
  // change to commit). Errc::not_found when the message is not queued.
  Expected<Active*> hold(const std::string& id);
  // Is `job` still wanted: its message active, in this round, same copy?
  Active* current(const sched::Job& job);
  void pump();
  void refill();
  void arm_refill(int64_t at_ms);
  void complete_job(uint64_t job_id, bool connection_failed, const std::vector<smtp::Reply>& replies,
                    const std::string& mx, const std::string& tls);
  void defer_without_attempt(const sched::Job& job, const smtp::Reply& why);
  std::vector<spool::LogEvent> record_outcomes(Active& a, const sched::Job& job,
                                               const std::vector<smtp::Reply>& replies, const std::string& mx,
                                               const std::string& tls, bool attempted, const std::string& body);
  void end_destination(Active& a, std::vector<spool::LogEvent> events);
  // Writes `a` as it is now (update, or delete when a.deleted) with events.
  // `failure` names the log line of a failed write (it is retried).
  void save(Active& a, std::vector<spool::LogEvent> events, const char* failure = "delivery.spool_update");
  void written(const std::string& id, spool::WriteRequest& w, const char* failure);
  void settle(const std::string& id);
  void arm_resave();
  void resave();
  void send_dsn(const Active& a, const std::vector<msg::DsnRecipient>& rcpts, const std::string& body);
  void submit_dsn(std::unique_ptr<spool::WriteRequest> req);
  std::string destination_of(const std::string& rcpt) const;
  int64_t now() const;
  void maybe_done();
  void quarantine(const std::string& id, int64_t next_attempt_ms,
                  std::function<void(spool::WriteRequest&)> then = {});
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
  // Writes that failed (full disk, I/O error) are made again from memory:
  // messages whose last state is not on disk (Active::unsaved), DSNs not
  // yet queued.
  net::Timer resave_timer_;
  std::vector<std::unique_ptr<spool::WriteRequest>> unsaved_dsns_;
  uint64_t resave_delay_ms_ = kResaveMinMs;
  static constexpr uint64_t kResaveMinMs = 1000, kResaveMaxMs = 30'000;
  uint64_t gen_ = 0;
  int64_t refill_at_ = 0;
  bool backlog_on_disk_ = false;
  bool stopping_ = false;
  std::function<void()> on_done_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace ferry
