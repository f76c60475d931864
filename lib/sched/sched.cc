// See sched.h.
#include "sched/sched.h"

#include <algorithm>

namespace ferry::sched {

void Scheduler::enqueue(std::string msg_id, std::string destination, std::vector<uint32_t> rcpts,
                        int64_t ready_at, uint64_t tag) {
  pending_.push(Item{ready_at, seq_++, std::move(msg_id), std::move(destination), std::move(rcpts), tag});
}

Job Scheduler::make_job(Item&& it) {
  Job j;
  j.id = next_job_id_++;
  j.msg_id = std::move(it.msg_id);
  j.destination = std::move(it.destination);
  j.rcpts = std::move(it.rcpts);
  j.tag = it.tag;
  return j;
}

Scheduler::Decision Scheduler::poll(int64_t now) {
  Decision d;
  while (!pending_.empty() && pending_.top().ready_at <= now) {
    Item it = pending_.top();
    pending_.pop();
    auto& dest = dests_[it.destination];
    if (dest.window == 0) dest.window = policy_.initial_window;
    dest.ready.push_back(std::move(it));
  }
  for (auto it = dests_.begin(); it != dests_.end();) {
    auto& [name, dest] = *it;
    if (dest.suspended_until > now) {
      // Suspended: waiting work is handed back to age normally.
      while (!dest.ready.empty()) {
        d.defer.push_back(make_job(std::move(dest.ready.front())));
        dest.ready.pop_front();
      }
    } else {
      if (dest.suspended_until != 0 && !dest.probing) {
        // Suspension over: one probe at a time until a success.
        dest.probing = true;
        dest.window = 1;
      }
      int window = std::min(dest.window, policy_.max_window);
      while (dest.active < window && !dest.ready.empty()) {
        d.start.push_back(make_job(std::move(dest.ready.front())));
        dest.ready.pop_front();
        dest.active++;
        active_total_++;
      }
    }
    if (dest.ready.empty() && dest.active == 0 && dest.suspended_until <= now && dest.failures == 0) {
      it = dests_.erase(it);  // nothing to remember: keep memory bounded
    } else {
      if (!dest.ready.empty() && dest.suspended_until > now)
        d.wake_at = d.wake_at ? std::min(*d.wake_at, dest.suspended_until) : dest.suspended_until;
      ++it;
    }
  }
  if (!pending_.empty())
    d.wake_at = d.wake_at ? std::min(*d.wake_at, pending_.top().ready_at) : pending_.top().ready_at;
  return d;
}

void Scheduler::finished(const Job& job, bool connection_failed, int64_t now) {
  auto& dest = dests_[job.destination];
  if (dest.active > 0) {
    dest.active--;
    active_total_--;
  }
  if (dest.window == 0) dest.window = policy_.initial_window;
  if (connection_failed) {
    dest.failures++;
    dest.window = std::max(1, dest.window / 2);
    if (dest.failures >= policy_.failures_to_suspend || dest.probing) {
      dest.suspended_until = now + policy_.suspend_ms;
      dest.probing = false;
    }
  } else {
    dest.failures = 0;
    dest.suspended_until = 0;
    dest.probing = false;
    dest.window = std::min(dest.window + 1, policy_.max_window);
  }
}

void Scheduler::release(const Job& job) {
  auto it = dests_.find(job.destination);
  if (it == dests_.end() || it->second.active == 0) return;
  it->second.active--;
  active_total_--;
}

void Scheduler::revive(const std::string& destination) {
  for (auto& [name, d] : dests_) {
    if (!destination.empty() && name != destination) continue;
    d.failures = 0;
    d.suspended_until = 0;
    d.probing = false;
    d.window = std::max(d.window, std::min(policy_.initial_window, policy_.max_window));
  }
}

std::map<std::string, Scheduler::DestinationState> Scheduler::destinations() const {
  std::map<std::string, DestinationState> out;
  for (const auto& [name, d] : dests_)
    out[name] = DestinationState{d.ready.size(), d.active, d.window, d.failures, d.suspended_until};
  return out;
}

int64_t next_attempt(int64_t created, int64_t now, const Policy& p, uint64_t random) {
  int64_t age = std::max<int64_t>(0, now - created);
  int64_t delay = std::clamp(age, p.min_backoff_ms, std::max(p.min_backoff_ms, p.max_backoff_ms));
  int64_t jitter = delay / 10 > 0 ? int64_t(random % uint64_t(delay / 10 + 1)) : 0;
  int64_t next = now + delay + jitter;
  int64_t end = created + p.max_lifetime_ms;
  return std::max(now, std::min(next, end));
}

bool expired(int64_t created, int64_t now, const Policy& p) { return now - created >= p.max_lifetime_ms; }

}  // namespace ferry::sched
