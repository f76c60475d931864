// In-memory Spool for tests: same contract as LMDB, including "full" when
// max_bytes would be exceeded, so the contract tests can cover it.
#include <map>
#include <mutex>

#include "spool/spool.h"
#include "spool/spool_record.h"
#include "util/bytes.h"

namespace ferry::spool {
namespace {

class MemSpool final : public Spool {
 public:
  explicit MemSpool(uint64_t max_bytes) : max_bytes_(max_bytes) {}

  void apply(std::span<WriteRequest* const> batch) override {
    std::lock_guard lock(mu_);
    for (WriteRequest* req : batch) {
      if (auto* ins = std::get_if<InsertMessage>(&req->op)) {
        std::string rec = encode_envelope(ins->envelope);
        uint64_t need = rec.size() + ins->body.size();
        if (used_ + need > max_bytes_) {
          req->result = Error(Errc::full, "spool is full");
          continue;
        }
        used_ += need;
        const auto& id = ins->envelope.id;
        sched_[sched_key(ins->envelope.next_attempt_ms, id)] = id;
        msgs_[id] = {std::move(rec), ins->body};
        add_events(ins->events);
        req->result = {};
      } else if (auto* up = std::get_if<UpdateMessage>(&req->op)) {
        // As LMDB: a gone message stays gone, the stored schedule row goes.
        const auto& env = up->envelope;
        auto it = msgs_.find(env.id);
        if (it == msgs_.end()) {
          req->result = Error(Errc::not_found, "message " + env.id + " is gone");
          continue;
        }
        auto stored = decode_envelope(env.id, it->second.first);
        if (stored) sched_.erase(sched_key(stored->next_attempt_ms, env.id));
        sched_.erase(sched_key(up->old_next_attempt_ms, env.id));
        if (all_final(env)) {
          used_ -= it->second.first.size() + it->second.second.size();
          msgs_.erase(it);
        } else {
          std::string rec = encode_envelope(env);
          used_ += rec.size();
          used_ -= it->second.first.size();
          it->second.first = std::move(rec);
          sched_[sched_key(env.next_attempt_ms, env.id)] = env.id;
        }
        add_events(up->events);
        req->result = {};
      } else if (auto* al = std::get_if<AppendLog>(&req->op)) {
        add_events(al->events);
        req->result = {};
      } else if (auto* q = std::get_if<QuarantineMessage>(&req->op)) {
        sched_.erase(sched_key(q->next_attempt_ms, q->id));
        msgs_.erase(q->id);
        req->result = {};
      } else if (auto* d = std::get_if<DeleteLogEvents>(&req->op)) {
        for (const auto& k : d->keys) log_.erase(k);
        req->result = {};
      } else if (auto* sp = std::get_if<SetSuppression>(&req->op)) {
        if (sp->remove) {
          req->result = suppress_.erase(sp->address) ? Expected<void>()
                                                      : Expected<void>(Error(Errc::not_found, "not suppressed"));
        } else {
          suppress_[sp->address] = sp->json;
          req->result = {};
        }
      } else if (auto* p = std::get_if<PurgeLog>(&req->op)) {
        p->purged = 0;
        while (!log_.empty() && p->purged < p->limit && log_.begin()->second.ts_ms < p->before_ms) {
          log_.erase(log_.begin());
          p->purged++;
        }
        req->result = {};
      } else if (auto* del = std::get_if<DeleteMessage>(&req->op)) {
        auto it = msgs_.find(del->id);
        if (it == msgs_.end()) {
          req->result = Error(Errc::not_found, "no such message " + del->id);
          continue;
        }
        auto env = decode_envelope(del->id, it->second.first);
        if (env) sched_.erase(sched_key(env->next_attempt_ms, del->id));
        used_ -= it->second.first.size() + it->second.second.size();
        msgs_.erase(it);
        req->result = {};
      }
    }
  }

  Expected<smtp::Envelope> get_envelope(std::string_view id) override {
    std::lock_guard lock(mu_);
    auto it = msgs_.find(std::string(id));
    if (it == msgs_.end()) return Error(Errc::not_found, "no such message " + std::string(id));
    return decode_envelope(id, it->second.first);
  }

  Expected<std::string> get_body(std::string_view id) override {
    std::lock_guard lock(mu_);
    auto it = msgs_.find(std::string(id));
    if (it == msgs_.end()) return Error(Errc::not_found, "no such message " + std::string(id));
    return it->second.second;
  }

  Expected<void> for_each_scheduled(const std::function<bool(const smtp::Envelope&)>& fn,
                                    const std::function<void(const std::string&, int64_t)>&) override {
    std::lock_guard lock(mu_);
    for (const auto& [key, id] : sched_) {
      auto env = decode_envelope(id, msgs_.at(id).first);
      if (!env) return env.error();
      if (!fn(*env)) break;
    }
    return {};
  }

  Expected<void> for_each_log(int64_t since_ms, const std::function<void(const LogEvent&)>& fn) override {
    std::lock_guard lock(mu_);
    for (auto it = log_.lower_bound(be64(uint64_t(std::max<int64_t>(0, since_ms)))); it != log_.end(); ++it)
      fn(LogEvent{it->second.ts_ms, it->second.json, it->first});
    return {};
  }

  Expected<void> for_each_log_of(std::string_view address, int64_t since_ms,
                                 const std::function<void(const LogEvent&)>& fn) override {
    // The test double scans; the contract is the same as the LMDB index.
    return for_each_log(since_ms, [&](const LogEvent& ev) {
      for (const auto& a : event_addresses(ev.json))
        if (a == address) return fn(ev);
    });
  }

  Expected<void> for_each_suppression(
      const std::function<void(const std::string&, const std::string&)>& fn) override {
    std::lock_guard lock(mu_);
    for (const auto& [a, j] : suppress_) fn(a, j);
    return {};
  }

  std::string audit_hash(std::string_view address) const override {
    static const uint8_t kKey[32] = {1};
    return hmac_hex(kKey, sizeof kKey, address);
  }

  Expected<std::string> first_id() override {
    std::lock_guard lock(mu_);
    return msgs_.empty() ? std::string() : msgs_.begin()->first;
  }

  Expected<uint64_t> message_count() override {
    std::lock_guard lock(mu_);
    return uint64_t(msgs_.size());
  }

 private:
  std::mutex mu_;
  uint64_t max_bytes_;
  uint64_t used_ = 0;
  std::map<std::string, std::pair<std::string, std::string>> msgs_;  // id → (record, body)
  std::map<std::string, std::string> sched_;                         // sched key → id
  std::map<std::string, LogEvent> log_;
  std::map<std::string, std::string> suppress_;

  void add_events(const std::vector<LogEvent>& events) {
    for (const auto& e : events) log_[log_key(e.ts_ms)] = e;
  }
};

}  // namespace

std::unique_ptr<Spool> make_mem_spool(uint64_t max_bytes) { return std::make_unique<MemSpool>(max_bytes); }

}  // namespace ferry::spool
