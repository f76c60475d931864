// LMDB Spool. One environment, named databases `msg` (id → envelope),
// `body` (id → bytes), `sched` ((next attempt, id) → ∅); `log` and
// `suppress` are created for the delivery log and suppression list.
// `log_addr` indexes the log by address: (address or its keyed hash, NUL,
// log key) → ∅, written and deleted with the event in one transaction.
// Only the spool writer thread writes; readers use read-only transactions
// from any thread (MDB_NOTLS). A commit is the fsync (unless sync is off).
//
// Full disk: LMDB fails a write with MDB_MAP_FULL when the map is used up,
// and then even a delete may not find pages to copy-on-write into. So new
// messages are refused (Errc::full → 452 4.3.1) once less than a reserve is
// left, and the reserve stays for deletes and state updates, which is what
// lets queued mail drain out of a full spool. The same holds for the
// filesystem under the spool (spool_space.h): inserts stop before it is
// full, and a write that still hits ENOSPC/EDQUOT is Errc::full, not an
// I/O error.
//
// After a failed commit: if LMDB failed writing data pages (the usual full
// disk case) it aborts the transaction and the environment stays usable.
// If it failed writing a meta page it marks the environment fatal and every
// later transaction gets MDB_PANIC (mdb.c 0.9.24, mdb_env_write_meta and
// mdb_txn_renew0); then the writer closes and reopens the environment before
// its next batch. Readers hold env_mu_ shared for the life of their short
// read transaction, the reopen holds it exclusively, so no reader ever
// uses a closed environment. A reader may nest (a for_each_* callback that
// reads a body): std::shared_mutex is glibc's reader-preferring rwlock, so a
// second shared lock never waits behind the writer.
#include <lmdb.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <shared_mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "spool/spool.h"
#include "spool/spool_record.h"
#include "spool/spool_space.h"
#include "util/bytes.h"
#include "util/log.h"

namespace ferry::spool {
namespace {

MDB_val val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

Error lmdb_error(int rc, std::string_view what) {
  Errc code = rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT ? Errc::full
              : rc == MDB_NOTFOUND                              ? Errc::not_found
                                                                : Errc::io;
  return Error(code, fmt::format("{}: {}", what, mdb_strerror(rc)));
}

// A read-only transaction that always ends, holding the environment lock
// shared so the writer cannot reopen the environment under it. `env` is
// read after the lock is taken.
class ReadTxn {
 public:
  ReadTxn(std::shared_mutex& mu, MDB_env* const& env) : lock_(mu) {
    // No environment: a reopen failed; the writer retries it each batch.
    rc_ = env ? mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn_) : MDB_PANIC;
  }
  ~ReadTxn() {
    if (txn_) mdb_txn_abort(txn_);
  }
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;
  int rc() const { return rc_; }
  MDB_txn* get() const { return txn_; }

 private:
  std::shared_lock<std::shared_mutex> lock_;
  MDB_txn* txn_ = nullptr;
  int rc_;
};

class LmdbSpool final : public Spool {
 public:
  ~LmdbSpool() override {
    if (env_) mdb_env_close(env_);
  }

  Expected<void> open(const LmdbOptions& o) {
    std::error_code ec;
    std::filesystem::create_directories(o.path, ec);
    if (ec) return Error(Errc::io, fmt::format("spool.path {}: {}", o.path, ec.message()));
    ::chmod(o.path.c_str(), 0700);  // bodies and addresses: owner only
    opts_ = o;
    map_size_ = o.max_size;
    sealer_ = o.sealer;
    reserve_ = std::max<uint64_t>(o.max_size / 16, 512 * 1024);
    if (auto r = open_env(); !r) return r;

    MDB_txn* txn;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc) return lmdb_error(rc, "mdb_txn_begin");
    if (auto r = open_dbis(txn); !r) {
      mdb_txn_abort(txn);
      return r;
    }
    // The audit secret: made once per spool, so audit hashes stay
    // comparable across restarts.
    MDB_val sk = val("audit_secret"), sv;
    if (mdb_get(txn, meta_, &sk, &sv) == 0 && sv.mv_size == 32) {
      audit_secret_.assign(static_cast<const char*>(sv.mv_data), 32);
    } else {
      audit_secret_.resize(32);
      RAND_bytes(reinterpret_cast<unsigned char*>(audit_secret_.data()), 32);
      MDB_val nv = val(audit_secret_);
      rc = mdb_put(txn, meta_, &sk, &nv, 0);
      if (rc) {
        mdb_txn_abort(txn);
        return lmdb_error(rc, "storing the audit secret");
      }
    }
    if (auto r = build_log_index(txn); !r) {
      mdb_txn_abort(txn);
      return r;
    }
    rc = mdb_txn_commit(txn);
    if (rc) return lmdb_error(rc, "mdb_txn_commit");
    MDB_stat st;
    mdb_env_stat(env_, &st);
    page_size_ = st.ms_psize;
    return {};
  }

  // Test seam: makes the next batch reopen the environment, as MDB_PANIC
  // does (a failing meta-page write cannot be provoked on demand).
  void force_reopen() { reopen_ = true; }

  void apply(std::span<WriteRequest* const> batch) override {
    if (reopen_) {
      if (auto r = reopen(); !r) {
        fail_all(batch, r.error());
        return;
      }
    }
    // Measured before the write transaction starts: LMDB refuses cursors on
    // its free list inside a write transaction, and as the only writer we
    // see the same state from a read transaction.
    uint64_t used = used_bytes();
    fs_ = probe_fs(opts_.path);
    fs_room_ = insert_room(fs_, data_file_bytes(), used);
    fs_reserve_ = fs_reserve(reserve_, fs_.total);
    MDB_txn* txn;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    // A fatal error whose own commit we did not see fail (a reader's
    // mdb_reader_check, say): reopen before the next batch as well.
    if (rc == MDB_PANIC) reopen_ = true;
    if (rc) {
      fail_all(batch, lmdb_error(rc, "mdb_txn_begin"));
      return;
    }
    for (WriteRequest* req : batch) {
      MDB_txn* child;
      rc = mdb_txn_begin(env_, txn, 0, &child);
      if (rc) {
        req->result = lmdb_error(rc, "mdb_txn_begin (nested)");
        continue;
      }
      Expected<void> r = std::visit([&](auto& op) { return do_op(child, op, used); }, req->op);
      if (!r) {
        mdb_txn_abort(child);  // back to the parent's state; the others go on
        req->result = r;
        continue;
      }
      rc = mdb_txn_commit(child);
      req->result = rc ? Expected<void>(lmdb_error(rc, "nested commit")) : Expected<void>();
    }
    rc = mdb_txn_commit(txn);  // the durable step: fsync unless sync is off
    if (rc) fail_all(batch, commit_error(rc));
  }

  Expected<smtp::Envelope> get_envelope(std::string_view id) override {
    ReadTxn t(env_mu_, env_);
    if (t.rc()) return lmdb_error(t.rc(), "mdb_txn_begin");
    MDB_val k = val(id), v;
    int rc = mdb_get(t.get(), msg_, &k, &v);
    if (rc) return lmdb_error(rc, fmt::format("message {}", id));
    auto plain = unseal("msg", id, view(v));
    if (!plain) return Error(Errc::corrupt, fmt::format("message {}: {}", id, plain.error().message));
    return decode_envelope(id, *plain);
  }

  Expected<std::string> get_body(std::string_view id) override {
    ReadTxn t(env_mu_, env_);
    if (t.rc()) return lmdb_error(t.rc(), "mdb_txn_begin");
    MDB_val k = val(id), v;
    int rc = mdb_get(t.get(), body_, &k, &v);
    if (rc) return lmdb_error(rc, fmt::format("body of {}", id));
    auto plain = body_from_rest(id, view(v));
    if (!plain) return Error(Errc::corrupt, fmt::format("body of {}: {}", id, plain.error().message));
    return plain;
  }

  Expected<void> for_each_scheduled(const std::function<bool(const smtp::Envelope&)>& fn,
                                    const std::function<void(const std::string&, int64_t)>& unreadable) override {
    ReadTxn t(env_mu_, env_);
    if (t.rc()) return lmdb_error(t.rc(), "mdb_txn_begin");
    MDB_cursor* cur;
    int rc = mdb_cursor_open(t.get(), sched_, &cur);
    if (rc) return lmdb_error(rc, "mdb_cursor_open");
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      std::string_view id = sched_key_id(view(k));
      MDB_val mk = val(id), mv;
      int grc = mdb_get(t.get(), msg_, &mk, &mv);
      if (grc) {
        log::error("spool.sched_orphan", {{"id", std::string(id)}, {"error", mdb_strerror(grc)}});
        continue;
      }
      auto plain = unseal("msg", id, view(mv));
      auto env = plain ? decode_envelope(id, *plain) : Expected<smtp::Envelope>(plain.error());
      if (!env) {
        log::error("spool.unreadable", {{"id", std::string(id)}, {"error", env.error().message}});
        if (unreadable) unreadable(std::string(id), int64_t(from_be64(view(k))));
        continue;
      }
      if (!fn(*env)) {
        rc = MDB_NOTFOUND;
        break;
      }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) return lmdb_error(rc, "walking the schedule");
    return {};
  }

  Expected<void> for_each_log(int64_t since_ms, const std::function<void(const LogEvent&)>& fn) override {
    ReadTxn t(env_mu_, env_);
    if (t.rc()) return lmdb_error(t.rc(), "mdb_txn_begin");
    MDB_cursor* cur;
    int rc = mdb_cursor_open(t.get(), log_, &cur);
    if (rc) return lmdb_error(rc, "mdb_cursor_open");
    std::string start = be64(uint64_t(std::max<int64_t>(0, since_ms)));
    MDB_val k = val(start), v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      auto plain = unseal("log", view(k), view(v));
      if (!plain) {
        log::error("spool.unreadable_log", {{"error", plain.error().message}});
        continue;
      }
      fn(LogEvent{int64_t(from_be64(view(k))), std::move(*plain), std::string(view(k))});
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) return lmdb_error(rc, "walking the log");
    return {};
  }

  Expected<void> for_each_log_of(std::string_view address, int64_t since_ms,
                                 const std::function<void(const LogEvent&)>& fn) override {
    ReadTxn t(env_mu_, env_);
    if (t.rc()) return lmdb_error(t.rc(), "mdb_txn_begin");
    MDB_cursor* cur;
    int rc = mdb_cursor_open(t.get(), log_addr_, &cur);
    if (rc) return lmdb_error(rc, "mdb_cursor_open");
    std::string prefix = addr_prefix(address);
    std::string start = prefix + be64(uint64_t(std::max<int64_t>(0, since_ms)));
    MDB_val k = val(start), v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && view(k).starts_with(prefix);
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      std::string_view lk = view(k).substr(prefix.size());
      MDB_val lkv = val(lk), lv;
      if (mdb_get(t.get(), log_, &lkv, &lv) != 0) continue;
      auto plain = unseal("log", lk, view(lv));
      if (!plain) {
        log::error("spool.unreadable_log", {{"error", plain.error().message}});
        continue;
      }
      fn(LogEvent{int64_t(from_be64(lk)), std::move(*plain), std::string(lk)});
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error(rc, "walking the log index");
    return {};
  }

  Expected<void> for_each_suppression(
      const std::function<void(const std::string&, const std::string&)>& fn) override {
    ReadTxn t(env_mu_, env_);
    if (t.rc()) return lmdb_error(t.rc(), "mdb_txn_begin");
    MDB_cursor* cur;
    int rc = mdb_cursor_open(t.get(), suppress_, &cur);
    if (rc) return lmdb_error(rc, "mdb_cursor_open");
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      auto plain = unseal("suppress", view(k), view(v));
      if (!plain) continue;
      auto j = nlohmann::json::parse(*plain, nullptr, false);
      if (j.is_discarded()) continue;
      fn(j.is_object() && j.contains("address") && j["address"].is_string() ? j["address"].get<std::string>() : "", *plain);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) return lmdb_error(rc, "walking suppressions");
    return {};
  }

  std::string audit_hash(std::string_view address) const override {
    if (sealer_) return sealer_->keyed_hash(address);
    return hmac_hex(reinterpret_cast<const uint8_t*>(audit_secret_.data()), audit_secret_.size(), address);
  }

  Expected<std::string> first_id() override {
    ReadTxn t(env_mu_, env_);
    if (t.rc()) return lmdb_error(t.rc(), "mdb_txn_begin");
    MDB_cursor* cur;
    int rc = mdb_cursor_open(t.get(), msg_, &cur);
    if (rc) return lmdb_error(rc, "mdb_cursor_open");
    MDB_val k, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    std::string id = rc == 0 ? std::string(view(k)) : "";
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND) return lmdb_error(rc, "first message");
    return id;
  }

  Expected<uint64_t> message_count() override {
    ReadTxn t(env_mu_, env_);
    if (t.rc()) return lmdb_error(t.rc(), "mdb_txn_begin");
    MDB_stat st;
    int rc = mdb_stat(t.get(), msg_, &st);
    if (rc) return lmdb_error(rc, "mdb_stat");
    return uint64_t(st.ms_entries);
  }

 private:
  static void fail_all(std::span<WriteRequest* const> batch, const Error& e) {
    for (WriteRequest* r : batch) r->result = e;
  }

  Expected<void> open_env() {
    int rc = mdb_env_create(&env_);
    if (rc) return lmdb_error(rc, "mdb_env_create");
    mdb_env_set_maxdbs(env_, 16);
    rc = mdb_env_set_mapsize(env_, opts_.max_size);
    if (rc) return lmdb_error(rc, "mdb_env_set_mapsize");
    unsigned flags = MDB_NOTLS;
    if (!opts_.sync) flags |= MDB_NOSYNC | MDB_NOMETASYNC;
    rc = mdb_env_open(env_, opts_.path.c_str(), flags, 0600);
    if (rc) return lmdb_error(rc, fmt::format("opening spool {}", opts_.path));
    // A reader left behind by a killed process would pin old pages forever.
    int dead = 0;
    mdb_reader_check(env_, &dead);
    return {};
  }

  Expected<void> open_dbis(MDB_txn* txn) {
    for (auto [name, dbi] : {std::pair{"msg", &msg_}, {"body", &body_}, {"sched", &sched_},
                             {"log", &log_}, {"suppress", &suppress_}, {"quarantine", &quarantine_},
                             {"meta", &meta_}, {"log_addr", &log_addr_}}) {
      int rc = mdb_dbi_open(txn, name, MDB_CREATE, dbi);
      if (rc) return lmdb_error(rc, fmt::format("opening database {}", name));
    }
    return {};
  }

  // Closes and reopens the environment (writer thread, between batches).
  // Until it succeeds every batch fails with the reason, and the next batch
  // tries again: a restart is never needed.
  Expected<void> reopen() {
    std::unique_lock lock(env_mu_);
    if (env_) mdb_env_close(env_);
    env_ = nullptr;
    if (auto r = open_env(); !r) {
      if (env_) mdb_env_close(env_);
      env_ = nullptr;
      return r;
    }
    MDB_txn* txn;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc) return lmdb_error(rc, "mdb_txn_begin (reopen)");
    if (auto r = open_dbis(txn); !r) {
      mdb_txn_abort(txn);
      return r;
    }
    rc = mdb_txn_commit(txn);
    if (rc) return commit_error(rc);
    reopen_ = false;
    log::warn("spool.reopened", {{"path", opts_.path}});
    return {};
  }

  // A failed commit: a full filesystem is Errc::full (452 4.3.1, try
  // later), whatever way LMDB reported it; MDB_PANIC means reopen.
  Error commit_error(int rc) {
    Error e = lmdb_error(rc, "spool commit");
    if (rc == MDB_PANIC) reopen_ = true;
    if (e.code != Errc::full && failure_is_full(rc, probe_fs(opts_.path), fs_reserve_)) {
      e.code = Errc::full;
      e.message = fmt::format("spool commit: the filesystem of {} is full ({})", opts_.path, mdb_strerror(rc));
    }
    return e;
  }

  uint64_t data_file_bytes() const {
    int fd = -1;
    struct stat st;
    if (mdb_env_get_fd(env_, &fd) != 0 || ::fstat(fd, &st) != 0) return 0;
    return uint64_t(st.st_size);
  }

  // Bytes in use: pages up to the high-water mark minus those on the free
  // list (walked like mdb_stat -f does; the list is short in practice).
  uint64_t used_bytes() {
    MDB_envinfo info;
    mdb_env_info(env_, &info);
    uint64_t pages = uint64_t(info.me_last_pgno) + 1;
    ReadTxn t(env_mu_, env_);
    MDB_cursor* cur;
    if (t.rc() == 0 && mdb_cursor_open(t.get(), 0, &cur) == 0) {  // dbi 0 is LMDB's free list
      MDB_val k, v;
      uint64_t free_pages = 0;
      for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
           rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size >= sizeof(size_t)) free_pages += *static_cast<const size_t*>(v.mv_data);
      }
      mdb_cursor_close(cur);
      pages = free_pages < pages ? pages - free_pages : 0;
    }
    return pages * page_size_;
  }

  // Values of msg, body and log are sealed when a key is configured; the
  // database name and the key are the associated data.
  std::string seal(const char* db, std::string_view key, std::string_view plain) const {
    if (!sealer_) return std::string(plain);
    return sealer_->seal(plain, std::string(db) + ":" + std::string(key));
  }
  Expected<std::string> unseal(const char* db, std::string_view key, std::string_view stored) const {
    if (!sealer_) {
      if (Sealer::is_sealed(stored))
        return Error(Errc::corrupt, "record is sealed but spool.encryption_key_file is not set");
      return std::string(stored);
    }
    return sealer_->open(stored, std::string(db) + ":" + std::string(key));
  }

  // Bodies at rest: sealed (the AEAD tag is the checksum) or framed with a
  // CRC-32 (spool_record.h), so a damaged body is Errc::corrupt, never sent.
  std::string body_at_rest(std::string_view id, std::string_view body) const {
    return sealer_ ? seal("body", id, body) : frame_body(body);
  }
  Expected<std::string> body_from_rest(std::string_view id, std::string_view stored) const {
    if (sealer_) return sealer_->open(stored, "body:" + std::string(id));
    if (Sealer::is_sealed(stored))
      return Error(Errc::corrupt, "record is sealed but spool.encryption_key_file is not set");
    return unframe_body(id, stored);
  }

  Expected<void> put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view data) {
    MDB_val k = val(key), v = val(data);
    int rc = mdb_put(txn, dbi, &k, &v, 0);
    if (rc) return lmdb_error(rc, "mdb_put");
    return {};
  }

  Expected<void> do_op(MDB_txn* txn, InsertMessage& ins, uint64_t& used) {
    const auto& env = ins.envelope;
    std::string rec = encode_envelope(env);
    // Bodies go in overflow pages: size rounded up, plus tree overhead.
    uint64_t need = (rec.size() + ins.body.size()) * 11 / 10 + 4 * page_size_;
    if (used + need + reserve_ > map_size_)
      return Error(Errc::full, "spool is full (spool.max_size)");
    if (need + fs_reserve_ > fs_room_)
      return Error(Errc::full, fmt::format("the filesystem of {} is nearly full ({} bytes free)", opts_.path,
                                           fs_.avail));
    if (auto r = put(txn, msg_, env.id, seal("msg", env.id, rec)); !r) return r;
    if (auto r = put(txn, body_, env.id, body_at_rest(env.id, ins.body)); !r) return r;
    if (auto r = put(txn, sched_, sched_key(env.next_attempt_ms, env.id), ""); !r) return r;
    if (auto r = put_events(txn, ins.events); !r) return r;
    used += need;
    fs_room_ -= need;
    return {};
  }

  Expected<void> put_events(MDB_txn* txn, const std::vector<LogEvent>& events) {
    for (const auto& ev : events) {
      std::string k = log_key(ev.ts_ms);
      if (auto r = put(txn, log_, k, seal("log", k, ev.json)); !r) return r;
      if (auto r = index_event(txn, k, ev.json, true); !r) return r;
    }
    return {};
  }

  // The index key prefix of an address: under encryption its keyed hash,
  // so the index holds no address in clear either.
  std::string addr_prefix(std::string_view address) const {
    return (sealer_ ? "h:" + sealer_->keyed_hash(address) : std::string(address)) + '\0';
  }

  Expected<void> index_event(MDB_txn* txn, std::string_view key, std::string_view json, bool add) {
    for (const auto& a : event_addresses(json)) {
      std::string ik = addr_prefix(a) + std::string(key);
      if (add) {
        if (auto r = put(txn, log_addr_, ik, ""); !r) return r;
      } else {
        MDB_val k = val(ik);
        int rc = mdb_del(txn, log_addr_, &k, nullptr);
        if (rc && rc != MDB_NOTFOUND) return lmdb_error(rc, "deleting a log index entry");
      }
    }
    return {};
  }

  // Deletes a log event and its index entries; `stored` is its value.
  // `key` and `stored` may point into LMDB pages, which the first update
  // invalidates: both are copied before anything is written.
  Expected<void> unindex_event(MDB_txn* txn, std::string_view key_in, std::string_view stored) {
    std::string key(key_in);
    auto plain = unseal("log", key, stored);
    // An event that cannot be read cannot be unindexed; its entries only
    // point at nothing (and hold hashes, not addresses, under encryption).
    if (!plain) return {};
    return index_event(txn, key, *plain, false);
  }

  // A spool from before the index: index every event once, at open.
  Expected<void> build_log_index(MDB_txn* txn) {
    MDB_stat idx, lg;
    mdb_stat(txn, log_addr_, &idx);
    mdb_stat(txn, log_, &lg);
    if (idx.ms_entries > 0 || lg.ms_entries == 0) return {};
    MDB_cursor* cur;
    int rc = mdb_cursor_open(txn, log_, &cur);
    if (rc) return lmdb_error(rc, "mdb_cursor_open");
    MDB_val k, v;
    size_t n = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      std::string key(view(k));  // copied: the puts below invalidate k
      auto plain = unseal("log", key, view(v));
      if (!plain) continue;
      if (auto r = index_event(txn, key, *plain, true); !r) {
        mdb_cursor_close(cur);
        return r;
      }
      ++n;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) return lmdb_error(rc, "indexing the log");
    log::info("spool.log_indexed", {{"events", n}});
    return {};
  }

  // Updates may use the reserve that inserts leave free: they are what
  // drains a full spool.
  // A message that is gone stays gone (spool.h), and the schedule row
  // deleted is the stored envelope's: the caller's idea of it may be stale.
  Expected<void> do_op(MDB_txn* txn, UpdateMessage& up, uint64_t&) {
    const auto& env = up.envelope;
    MDB_val k = val(env.id), v;
    int rc = mdb_get(txn, msg_, &k, &v);
    if (rc == MDB_NOTFOUND) return Error(Errc::not_found, fmt::format("message {} is gone", env.id));
    if (rc) return lmdb_error(rc, fmt::format("message {}", env.id));
    int64_t stored_next = up.old_next_attempt_ms;
    if (auto plain = unseal("msg", env.id, view(v)); plain) {
      if (auto old = decode_envelope(env.id, *plain); old) stored_next = old->next_attempt_ms;
    }
    for (int64_t t : {stored_next, up.old_next_attempt_ms}) {
      std::string old_key = sched_key(t, env.id);
      MDB_val ok = val(old_key);
      rc = mdb_del(txn, sched_, &ok, nullptr);
      if (rc && rc != MDB_NOTFOUND) return lmdb_error(rc, "mdb_del sched");
    }
    if (all_final(env)) {
      k = val(env.id);
      rc = mdb_del(txn, msg_, &k, nullptr);
      if (rc && rc != MDB_NOTFOUND) return lmdb_error(rc, "mdb_del msg");
      rc = mdb_del(txn, body_, &k, nullptr);
      if (rc && rc != MDB_NOTFOUND) return lmdb_error(rc, "mdb_del body");
    } else {
      if (auto r = put(txn, msg_, env.id, seal("msg", env.id, encode_envelope(env))); !r) return r;
      if (auto r = put(txn, sched_, sched_key(env.next_attempt_ms, env.id), ""); !r) return r;
    }
    return put_events(txn, up.events);
  }

  Expected<void> do_op(MDB_txn* txn, QuarantineMessage& q, uint64_t&) {
    std::string sk = sched_key(q.next_attempt_ms, q.id);
    MDB_val skv = val(sk);
    mdb_del(txn, sched_, &skv, nullptr);
    for (auto [db, name] : {std::pair{msg_, "msg:"}, {body_, "body:"}}) {
      MDB_val k = val(q.id), v;
      if (mdb_get(txn, db, &k, &v) != 0) continue;
      std::string data(view(v));
      if (auto r = put(txn, quarantine_, name + q.id, data); !r) return r;
      k = val(q.id);
      mdb_del(txn, db, &k, nullptr);
    }
    return {};
  }

  Expected<void> do_op(MDB_txn* txn, DeleteLogEvents& d, uint64_t&) {
    for (const auto& key : d.keys) {
      MDB_val k = val(key), v;
      int rc = mdb_get(txn, log_, &k, &v);
      if (rc == MDB_NOTFOUND) continue;
      if (rc) return lmdb_error(rc, "reading a log event");
      if (auto r = unindex_event(txn, key, view(v)); !r) return r;
      k = val(key);
      rc = mdb_del(txn, log_, &k, nullptr);
      if (rc && rc != MDB_NOTFOUND) return lmdb_error(rc, "deleting a log event");
    }
    return {};
  }

  std::string suppress_key(std::string_view address) const {
    return sealer_ ? "h:" + sealer_->keyed_hash(address) : std::string(address);
  }

  Expected<void> do_op(MDB_txn* txn, SetSuppression& s, uint64_t&) {
    std::string key = suppress_key(s.address);
    if (s.remove) {
      MDB_val k = val(key);
      int rc = mdb_del(txn, suppress_, &k, nullptr);
      if (rc == MDB_NOTFOUND) return Error(Errc::not_found, "not suppressed: " + s.address);
      if (rc) return lmdb_error(rc, "removing a suppression");
      return {};
    }
    return put(txn, suppress_, key, seal("suppress", key, s.json));
  }

  Expected<void> do_op(MDB_txn* txn, PurgeLog& p, uint64_t&) {
    MDB_cursor* cur;
    int rc = mdb_cursor_open(txn, log_, &cur);
    if (rc) return lmdb_error(rc, "mdb_cursor_open");
    MDB_val k, v;
    p.purged = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && p.purged < p.limit;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      if (int64_t(from_be64(view(k))) >= p.before_ms) break;
      if (auto r = unindex_event(txn, view(k), view(v)); !r) {
        mdb_cursor_close(cur);
        return r;
      }
      rc = mdb_cursor_del(cur, 0);
      if (rc) break;
      p.purged++;
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND) return lmdb_error(rc, "purging the log");
    return {};
  }

  Expected<void> do_op(MDB_txn* txn, AppendLog& al, uint64_t&) { return put_events(txn, al.events); }

  Expected<void> do_op(MDB_txn* txn, DeleteMessage& del, uint64_t&) {
    MDB_val k = val(del.id), v;
    int rc = mdb_get(txn, msg_, &k, &v);
    if (rc) return lmdb_error(rc, fmt::format("message {}", del.id));
    auto plain = unseal("msg", del.id, view(v));
    auto env = plain ? decode_envelope(del.id, *plain) : Expected<smtp::Envelope>(plain.error());
    if (env) {
      std::string sk = sched_key(env->next_attempt_ms, del.id);
      MDB_val skv = val(sk);
      mdb_del(txn, sched_, &skv, nullptr);
    }
    k = val(del.id);
    rc = mdb_del(txn, msg_, &k, nullptr);
    if (rc) return lmdb_error(rc, "mdb_del msg");
    rc = mdb_del(txn, body_, &k, nullptr);
    if (rc && rc != MDB_NOTFOUND) return lmdb_error(rc, "mdb_del body");
    return {};
  }

  LmdbOptions opts_;
  std::shared_mutex env_mu_;  // shared: a read transaction; exclusive: reopen
  MDB_env* env_ = nullptr;
  bool reopen_ = false;  // writer thread only
  FsSpace fs_;           // writer thread only: this batch's view of the filesystem
  uint64_t fs_room_ = UINT64_MAX, fs_reserve_ = 0;
  MDB_dbi msg_ = 0, body_ = 0, sched_ = 0, log_ = 0, suppress_ = 0, quarantine_ = 0, meta_ = 0, log_addr_ = 0;
  std::string audit_secret_;
  std::shared_ptr<const Sealer> sealer_;
  uint64_t map_size_ = 0, reserve_ = 0, page_size_ = 4096;
};

}  // namespace

bool lmdb_spool_force_reopen(Spool& s) {
  auto* l = dynamic_cast<LmdbSpool*>(&s);
  if (l) l->force_reopen();
  return l != nullptr;
}

Expected<std::unique_ptr<Spool>> open_lmdb_spool(const LmdbOptions& opts) {
  auto s = std::make_unique<LmdbSpool>();
  if (auto r = s->open(opts); !r) return r.error();
  return std::unique_ptr<Spool>(std::move(s));
}

}  // namespace ferry::spool
