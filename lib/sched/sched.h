// The queue manager's decisions, pure: which (message, destination) jobs to
// start now, under each destination's concurrency window, and when to wake
// up next. Time is passed in; nothing here reads a clock or does I/O
// (OpenSMTPD's scheduler calls time(NULL) inside and is hard to test).
//
// Destination health (Postfix's dead-site logic): connection-level failures
// halve the window; after `failures_to_suspend` in a row the destination is
// suspended for `suspend_ms` and its waiting jobs are handed back to be
// deferred (so they age and expire like any deferral, never stuck); when
// the suspension ends one probe job runs with a window of 1. A 4xx for one
// recipient is not a connection failure and does not shrink the window.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <queue>
#include <string>
#include <vector>

namespace ferry::sched {

struct Policy {
  int initial_window = 5;
  int max_window = 20;
  int failures_to_suspend = 3;
  int64_t suspend_ms = 60'000;
  int64_t min_backoff_ms = 5 * 60'000;
  int64_t max_backoff_ms = 60 * 60'000;
  int64_t max_lifetime_ms = 5 * 86'400'000LL;
};

struct Job {
  uint64_t id = 0;
  std::string msg_id;
  std::string destination;
  std::vector<uint32_t> rcpts;  // indexes into the envelope's recipients
  // The caller's handle on what the job was made from (the delivery manager
  // puts the generation of its in-memory copy of the message here), so a
  // job queued for an older copy can be told apart and dropped.
  uint64_t tag = 0;
};

class Scheduler {
 public:
  explicit Scheduler(Policy p) : policy_(p) {}
  void set_policy(const Policy& p) { policy_ = p; }
  const Policy& policy() const { return policy_; }

  void enqueue(std::string msg_id, std::string destination, std::vector<uint32_t> rcpts,
               int64_t ready_at, uint64_t tag = 0);

  struct Decision {
    std::vector<Job> start;  // run these now (each holds one connection slot)
    std::vector<Job> defer;  // destination suspended: reschedule these without an attempt
    std::optional<int64_t> wake_at;
  };
  Decision poll(int64_t now);

  // A started job ended. connection_failed: no server of the destination
  // could be reached or talked to (feeds health); otherwise it counts as a
  // success for the window whatever the recipients' replies were.
  void finished(const Job& job, bool connection_failed, int64_t now);

  // A started job that was dropped before it ran (its message changed or
  // left the queue meanwhile): frees its slot and says nothing about the
  // destination's health.
  void release(const Job& job);

  // Forgets a destination's failures and suspension (ferryctl queue flush):
  // an admin who flushes wants an attempt now. Empty name: every destination.
  void revive(const std::string& destination);

  struct DestinationState {
    size_t ready = 0;
    int active = 0;
    int window = 0;
    int failures = 0;
    int64_t suspended_until = 0;
  };
  std::map<std::string, DestinationState> destinations() const;
  size_t active() const { return active_total_; }

 private:
  struct Item {
    int64_t ready_at;
    uint64_t seq;
    std::string msg_id;
    std::string destination;
    std::vector<uint32_t> rcpts;
    uint64_t tag;
    bool operator>(const Item& o) const { return ready_at != o.ready_at ? ready_at > o.ready_at : seq > o.seq; }
  };
  struct Destination {
    std::deque<Item> ready;
    int active = 0;
    int window = 0;
    int failures = 0;
    int64_t suspended_until = 0;
    bool probing = false;
  };
  Job make_job(Item&& it);

  Policy policy_;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> pending_;
  std::map<std::string, Destination> dests_;
  uint64_t seq_ = 0;
  uint64_t next_job_id_ = 1;
  size_t active_total_ = 0;
};

// Retry timing: next = now + clamp(age, min_backoff, max_backoff) + up to
// 10% jitter (from `random`), never later than the end of the lifetime, so
// the last attempt happens right at it.
int64_t next_attempt(int64_t created, int64_t now, const Policy& p, uint64_t random);
bool expired(int64_t created, int64_t now, const Policy& p);

}  // namespace ferry::sched
