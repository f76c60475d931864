// The Spool interface: where accepted mail lives until every recipient is
// final. Two implementations: LMDB (production) and memory (tests); one
// contract test suite runs against both. Writes come in batches so that one
// durable commit (one fsync) serves many messages: see spool_writer.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "smtp/smtp_envelope.h"
#include "spool/spool_crypto.h"
#include "util/expected.h"

namespace ferry::spool {

// A delivery-log event: a JSON object (DESIGN.md fields), stored in the
// `log` database under (time, sequence).
struct LogEvent {
  int64_t ts_ms = 0;
  std::string json;
  std::string key;  // set when read back: what DeleteLogEvents takes
};

struct InsertMessage {
  smtp::Envelope envelope;
  std::string body;
  std::vector<LogEvent> events;
};
// Rewrites an envelope after a delivery attempt (recipient states, next
// attempt). When every recipient is final the message, its body and its
// schedule entry are deleted in the same transaction.
// An update never resurrects a message: when its `msg` record is gone
// (deleted, quarantined or finished by an earlier write) nothing is written,
// its events included, and the result is Errc::not_found; the caller
// decides what to log. The schedule row removed is the one of the *stored*
// envelope (old_next_attempt_ms only when that record cannot be read), so a
// schedule row never outlives or duplicates its message.
struct UpdateMessage {
  smtp::Envelope envelope;
  int64_t old_next_attempt_ms = 0;
  std::vector<LogEvent> events;
};
struct DeleteMessage {
  std::string id;
};
struct AppendLog {
  std::vector<LogEvent> events;
};
// Moves a message whose records cannot be read (failed authentication,
// corruption) out of the queue into the `quarantine` database, for an
// admin to look at; it is never delivered.
struct QuarantineMessage {
  std::string id;
  int64_t next_attempt_ms = 0;
};
// Deletes the given delivery-log events (privacy erase).
struct DeleteLogEvents {
  std::vector<std::string> keys;
};
// Adds (or with remove, deletes) a suppression entry. `json` holds the
// address, reason and time; it is sealed like every other record.
struct SetSuppression {
  std::string address;  // lower-cased
  std::string json;
  bool remove = false;
};
// Deletes delivery-log events older than before_ms, at most `limit` of them
// (small batches: purging must never stall submission commits).
struct PurgeLog {
  int64_t before_ms = 0;
  size_t limit = 1000;
  size_t purged = 0;  // set by apply
};

struct WriteRequest {
  std::variant<InsertMessage, UpdateMessage, DeleteMessage, AppendLog, QuarantineMessage, PurgeLog,
               DeleteLogEvents, SetSuppression>
      op;
  Expected<void> result;  // set by Spool::apply
  // Called on the event loop once the batch holding this request committed
  // (or failed). Owned by whoever submitted the request.
  std::function<void(WriteRequest&)> done;
};

class Spool {
 public:
  virtual ~Spool() = default;
  // Applies every request in one durable transaction; each request gets its
  // own result, so a message that does not fit (Errc::full) fails alone and
  // its neighbours still commit. If the commit itself fails, all fail.
  virtual void apply(std::span<WriteRequest* const> batch) = 0;
  virtual Expected<smtp::Envelope> get_envelope(std::string_view id) = 0;
  virtual Expected<std::string> get_body(std::string_view id) = 0;
  // Queued messages in (next attempt, id) order, until fn returns false:
  // the restart walk and the delivery manager's refill.
  // Records that cannot be read are reported to `unreadable` (id, schedule
  // time) instead, so the caller can quarantine them.
  virtual Expected<void> for_each_scheduled(
      const std::function<bool(const smtp::Envelope&)>& fn,
      const std::function<void(const std::string&, int64_t)>& unreadable = {}) = 0;
  virtual Expected<uint64_t> message_count() = 0;
  // Suppression entries: (address, json).
  virtual Expected<void> for_each_suppression(
      const std::function<void(const std::string&, const std::string&)>& fn) = 0;
  // A keyed hash of an address for audit lines that must not name it:
  // HMAC-SHA256 under a secret kept in the spool (or derived from the
  // encryption key), 32 hex digits.
  virtual std::string audit_hash(std::string_view address) const = 0;
  // The smallest message id ("" when empty): ids sort by creation time.
  virtual Expected<std::string> first_id() = 0;
  // Delivery-log events from since_ms on, oldest first.
  virtual Expected<void> for_each_log(int64_t since_ms,
                                      const std::function<void(const LogEvent&)>& fn) = 0;
  // The events that name `address` (lower-cased) as sender or recipient,
  // from since_ms on, oldest first: read through an address index, so the
  // cost follows that address's events, not the size of the log.
  virtual Expected<void> for_each_log_of(std::string_view address, int64_t since_ms,
                                         const std::function<void(const LogEvent&)>& fn) = 0;
};

// True when no recipient is pending any more.
bool all_final(const smtp::Envelope& e);

std::unique_ptr<Spool> make_mem_spool(uint64_t max_bytes);

struct LmdbOptions {
  std::string path;
  uint64_t max_size = 0;
  bool sync = true;  // false: MDB_NOSYNC, unsafe, benchmarks only
  std::shared_ptr<const Sealer> sealer;  // set: records sealed at rest (AES-256-GCM)
};
Expected<std::unique_ptr<Spool>> open_lmdb_spool(const LmdbOptions& opts);
// Tests only: the next batch of an LMDB spool reopens its environment, the
// path a fatal LMDB error (MDB_PANIC) takes. False for other spools.
bool lmdb_spool_force_reopen(Spool& s);

}  // namespace ferry::spool
