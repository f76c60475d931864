// See spool_verify.h. The walk reads, never writes: the environment is
// opened read-only, so a running ferryd may be checked too (LMDB allows a
// second, read-only opener), and nothing is repaired behind an admin's back.
// Order matters: the file size is compared with the meta page's last page
// before any other page is touched, because a page past the end of the file
// is a SIGBUS, not an error code.
// LMDB itself checks little of a page header on reads (a damaged header
// bites later, when the writer frees or splits that page), so the walk also
// checks the header of every leaf page and first overflow page it reaches,
// from the on-disk layout of LMDB 0.9 (mdb.c: struct MdbPage): page number
// (8 bytes), pad (2), flags (2), then lower/upper (2+2) or the overflow
// page count (4).
#include "spool/spool_verify.h"

#include <fcntl.h>
#include <lmdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "spool/spool_record.h"

namespace ferry::spool {
namespace {

constexpr size_t kMaxProblems = 100;
constexpr uint64_t kMinPage = 4096;  // LMDB's smallest page: two of them hold the meta pages

std::string_view view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

constexpr uint16_t kPageLeaf = 0x02, kPageOverflow = 0x04;
constexpr uintptr_t kPageHeader = 16;

struct PageHeader {
  uint64_t pgno;
  uint16_t flags;
  uint16_t lower, upper;
  uint32_t pages;
};
PageHeader read_header(const char* page) {
  PageHeader h;
  std::memcpy(&h.pgno, page, 8);
  std::memcpy(&h.flags, page + 10, 2);
  std::memcpy(&h.lower, page + 12, 2);
  std::memcpy(&h.upper, page + 14, 2);
  std::memcpy(&h.pages, page + 12, 4);
  return h;
}

// The frame's magic, exactly (is_framed_body also admits a damaged one).
bool unframe_header_ok(std::string_view stored) { return stored.substr(0, 4) == frame_body("").substr(0, 4); }

class Walker {
 public:
  Walker(SpoolCheck& c, const CheckOptions& o, uint64_t file_size) : c_(c), o_(o), file_size_(file_size) {}
  ~Walker() {
    if (txn_) mdb_txn_abort(txn_);
    if (env_) mdb_env_close(env_);
  }

  void run(const std::string& dir) {
    int rc = mdb_env_create(&env_);
    if (rc) return fatal(fmt::format("mdb_env_create: {}", mdb_strerror(rc)));
    mdb_env_set_maxdbs(env_, 64);
    rc = mdb_env_open(env_, dir.c_str(), MDB_RDONLY | MDB_NOTLS, 0600);
    if (rc) return fatal(fmt::format("LMDB cannot open it: {}", mdb_strerror(rc)));
    MDB_envinfo info;
    MDB_stat est;
    mdb_env_info(env_, &info);
    mdb_env_stat(env_, &est);
    psize_ = est.ms_psize;
    last_pgno_ = info.me_last_pgno;
    c_.pages = last_pgno_ + 1;
    uint64_t claimed = (last_pgno_ + 1) * psize_;
    if (file_size_ < claimed || file_size_ < 2 * psize_)
      return fatal(fmt::format("the file is {} bytes but its meta page says {} ({} pages of {} bytes): it was "
                               "truncated, or the meta page is damaged",
                               file_size_, claimed, last_pgno_ + 1, psize_));
    rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn_);
    if (rc) return fatal(fmt::format("mdb_txn_begin: {}", mdb_strerror(rc)));
    if (!walk_free_list()) return;
    std::vector<std::string> names;
    if (!walk_names(names)) return;
    for (const auto& n : names)
      if (!open_named(n)) return;
    for (const auto& [name, dbi] : dbis_)
      if (!walk_db(name, dbi)) return;
  }

 private:
  void fatal(std::string why) { c_.fatal = std::move(why); }
  void problem(std::string what) {
    if (c_.problems.size() < kMaxProblems) c_.problems.push_back(std::move(what));
    c_.problem_count++;
  }

  // Every entry of a database, in order; fn sees each. The first and last
  // byte of each value are read, so a value that points outside the file
  // faults here, in the child. An entry count no file of this size can hold
  // means the tree loops.
  bool walk(MDB_dbi dbi, const std::string& what, const std::function<void(const MDB_val&, const MDB_val&)>& fn) {
    MDB_cursor* cur;
    int rc = mdb_cursor_open(txn_, dbi, &cur);
    if (rc) {
      fatal(fmt::format("cannot walk {}: {}", what, mdb_strerror(rc)));
      return false;
    }
    uint64_t n = 0, bound = file_size_ / 8 + 16;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      if (++n > bound) {
        mdb_cursor_close(cur);
        fatal(fmt::format("walking {} found more entries than the file can hold: its pages loop", what));
        return false;
      }
      if (v.mv_size > file_size_) {
        mdb_cursor_close(cur);
        fatal(fmt::format("an entry of {} claims {} bytes, more than the whole file", what, v.mv_size));
        return false;
      }
      if (v.mv_size) {
        const volatile char* p = static_cast<const char*>(v.mv_data);
        (void)p[0];
        (void)p[v.mv_size - 1];
      }
      if (!headers_ok(k, v, what)) {
        mdb_cursor_close(cur);
        return false;
      }
      fn(k, v);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
      fatal(fmt::format("walking {}: {}", what, mdb_strerror(rc)));
      return false;
    }
    return true;
  }

  // The leaf page holding the key, and the first overflow page of a value
  // stored outside it (its data starts right after a page header). The map
  // is page-aligned, so a pointer gives its page; the first header seen
  // fixes where page 0 is, and every later one must agree.
  bool headers_ok(const MDB_val& k, const MDB_val& v, const std::string& what) {
    auto page_of = [&](const void* p) { return reinterpret_cast<uintptr_t>(p) & ~uintptr_t(psize_ - 1); };
    auto consistent = [&](uintptr_t page, const PageHeader& h) {
      if (h.pgno < 2 || h.pgno > last_pgno_) return false;
      uintptr_t base = page - uintptr_t(h.pgno * psize_);
      if (!base_) base_ = base;
      return base == base_;
    };
    uintptr_t leaf = page_of(k.mv_data);
    PageHeader lh = read_header(reinterpret_cast<const char*>(leaf));
    if (!(lh.flags & kPageLeaf) || !consistent(leaf, lh) || lh.lower > lh.upper || lh.upper > psize_) {
      fatal(fmt::format("a page of {} has a damaged header", what));
      return false;
    }
    if ((reinterpret_cast<uintptr_t>(v.mv_data) & uintptr_t(psize_ - 1)) == kPageHeader) {
      uintptr_t ov = page_of(v.mv_data);
      PageHeader oh = read_header(reinterpret_cast<const char*>(ov));
      uint64_t want = (v.mv_size + kPageHeader + psize_ - 1) / psize_;
      if (!(oh.flags & kPageOverflow) || !consistent(ov, oh) || oh.pages != want ||
          oh.pgno + oh.pages > last_pgno_ + 1) {
        fatal(fmt::format("an overflow page of {} has a damaged header", what));
        return false;
      }
    }
    return true;
  }

  // LMDB's free list (dbi 0): txn id → page list. A page number past the
  // last page would be handed to the writer as free space.
  bool walk_free_list() {
    bool bad = false;
    bool ok = walk(0, "the free list", [&](const MDB_val&, const MDB_val& v) {
      if (v.mv_size < sizeof(size_t) || v.mv_size % sizeof(size_t)) {
        bad = true;
        return;
      }
      // Page lists are size_t arrays, not necessarily aligned in the leaf.
      const char* raw = static_cast<const char*>(v.mv_data);
      auto id_at = [&](size_t i) {
        size_t x;
        std::memcpy(&x, raw + i * sizeof x, sizeof x);
        return x;
      };
      size_t count = id_at(0);
      if (count > v.mv_size || (count + 1) * sizeof(size_t) != v.mv_size) {
        bad = true;
        return;
      }
      for (size_t i = 1; i <= count; ++i)
        if (id_at(i) < 2 || id_at(i) > last_pgno_) bad = true;
    });
    if (ok && bad) fatal("the free list names pages that do not exist: it is damaged");
    return ok && !bad;
  }

  bool walk_names(std::vector<std::string>& names) {
    MDB_dbi main;
    int rc = mdb_dbi_open(txn_, nullptr, 0, &main);
    if (rc) {
      fatal(fmt::format("cannot open the main database: {}", mdb_strerror(rc)));
      return false;
    }
    return walk(main, "the main database", [&](const MDB_val& k, const MDB_val&) { names.emplace_back(view(k)); });
  }

  bool open_named(const std::string& name) {
    MDB_dbi dbi;
    int rc = name.find('\0') == std::string::npos ? mdb_dbi_open(txn_, name.c_str(), 0, &dbi) : MDB_INCOMPATIBLE;
    if (rc) {
      fatal(fmt::format("the main database names a database it cannot open: {}", mdb_strerror(rc)));
      return false;
    }
    dbis_.emplace_back(name, dbi);
    return true;
  }

  MDB_dbi* find(const char* name) {
    for (auto& [n, d] : dbis_)
      if (n == name) return &d;
    return nullptr;
  }
  bool has(const char* db, std::string_view key) {
    MDB_dbi* d = find(db);
    if (!d) return false;
    MDB_val k{key.size(), const_cast<char*>(key.data())}, v;
    return mdb_get(txn_, *d, &k, &v) == 0;
  }

  Expected<std::string> open_record(const char* db, std::string_view key, std::string_view stored) {
    if (o_.sealer) return o_.sealer->open(stored, std::string(db) + ":" + std::string(key));
    if (Sealer::is_sealed(stored)) {
      sealed_without_key_ = true;
      return Error(Errc::invalid, "sealed");
    }
    return std::string(stored);
  }

  bool walk_db(const std::string& name, MDB_dbi dbi) {
    std::string what = "database " + name;
    if (name == "msg") {
      return walk(dbi, what, [&](const MDB_val& k, const MDB_val& v) {
        std::string id(view(k));
        c_.messages++;
        auto plain = open_record("msg", id, view(v));
        if (!plain && plain.error().code == Errc::invalid) return;  // sealed, no key: not checkable
        auto env = plain ? decode_envelope(id, *plain) : Expected<smtp::Envelope>(plain.error());
        if (!env) return problem(fmt::format("message {}: {} (it will be quarantined)", id, env.error().message));
        if (!has("body", id)) problem(fmt::format("message {} has no body", id));
        if (!has("sched", sched_key(env->next_attempt_ms, id)))
          problem(fmt::format("message {} is not scheduled", id));
      });
    }
    if (name == "sched") {
      return walk(dbi, what, [&](const MDB_val& k, const MDB_val&) {
        c_.scheduled++;
        std::string id(sched_key_id(view(k)));
        if (!has("msg", id)) problem(fmt::format("schedule row for a missing message {}", id));
      });
    }
    if (name == "body") {
      return walk(dbi, what, [&](const MDB_val& k, const MDB_val& v) {
        std::string id(view(k));
        c_.bodies++;
        if (!has("msg", id)) problem(fmt::format("body without a message: {}", id));
        std::string_view stored = view(v);
        if (Sealer::is_sealed(stored)) {
          if (!o_.bodies || !o_.sealer) return;
          if (!o_.sealer->open(stored, "body:" + id))
            problem(fmt::format("body of {} fails its authentication tag (it will be quarantined)", id));
          return;
        }
        // The frame's header is always checked (it is on the first page,
        // already read); the checksum over all bytes only on request.
        if (!is_framed_body(stored)) return;  // a body from before checksums
        if (stored.size() < kBodyFrameSize || !unframe_header_ok(stored)) {
          problem(fmt::format("body of {} has a damaged header (it will be quarantined)", id));
          return;
        }
        if (o_.bodies) {
          if (auto b = unframe_body(id, stored); !b) problem(b.error().message + " (it will be quarantined)");
        }
      });
    }
    return walk(dbi, what, [](const MDB_val&, const MDB_val&) {});
  }

  SpoolCheck& c_;
  const CheckOptions& o_;
  uint64_t file_size_;
  uint64_t psize_ = kMinPage, last_pgno_ = 0;
  uintptr_t base_ = 0;  // where page 0 is mapped, from the first header seen
  MDB_env* env_ = nullptr;
  MDB_txn* txn_ = nullptr;
  std::vector<std::pair<std::string, MDB_dbi>> dbis_;

 public:
  bool sealed_without_key_ = false;
};

SpoolCheck from_json(const std::string& text) {
  SpoolCheck c;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) {
    c.fatal = "the check gave no answer";
    return c;
  }
  c.file = j.value("file", "");
  c.exists = j.value("exists", false);
  c.fatal = j.value("fatal", "");
  c.problems = j.value("problems", std::vector<std::string>{});
  c.problem_count = j.value("problem_count", uint64_t(0));
  c.messages = j.value("messages", uint64_t(0));
  c.bodies = j.value("bodies", uint64_t(0));
  c.scheduled = j.value("scheduled", uint64_t(0));
  c.pages = j.value("pages", uint64_t(0));
  c.records_unchecked = j.value("records_unchecked", false);
  return c;
}

}  // namespace

SpoolCheck check_spool_here(const std::string& dir, const CheckOptions& opts) {
  SpoolCheck c;
  c.file = dir + "/data.mdb";
  struct stat st;
  if (::stat(c.file.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      c.exists = true;
      c.fatal = std::strerror(errno);
    }
    return c;  // no data file: a new spool
  }
  c.exists = true;
  uint64_t size = uint64_t(st.st_size);
  if (size == 0) {
    c.fatal = "the file is empty (0 bytes): whatever it held is gone";
    return c;
  }
  if (size < 2 * kMinPage) {
    c.fatal = fmt::format("the file is {} bytes, smaller than LMDB's two meta pages: it was truncated", size);
    return c;
  }
  Walker w(c, opts, size);
  w.run(dir);
  c.records_unchecked = w.sealed_without_key_;
  return c;
}

std::string to_json(const SpoolCheck& c) {
  nlohmann::json j = {{"file", c.file},       {"exists", c.exists},       {"ok", c.ok()},
                      {"fatal", c.fatal},     {"problems", c.problems},   {"problem_count", c.problem_count},
                      {"messages", c.messages}, {"bodies", c.bodies},     {"scheduled", c.scheduled},
                      {"pages", c.pages},     {"records_unchecked", c.records_unchecked}};
  return j.dump();
}

SpoolCheck check_spool(const std::string& dir, const CheckOptions& opts) {
  SpoolCheck c;
  c.file = dir + "/data.mdb";
  struct stat st;
  if (::stat(c.file.c_str(), &st) != 0 && errno == ENOENT) return c;  // a new spool: nothing to walk
  c.exists = true;
  int timeout_s = opts.timeout_s > 0 ? opts.timeout_s : 30 + int(uint64_t(st.st_size) / (64 << 20));
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    c.fatal = fmt::format("cannot check it: pipe: {}", std::strerror(errno));
    return c;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    c.fatal = fmt::format("cannot check it: fork: {}", std::strerror(errno));
    ::close(fds[0]);
    ::close(fds[1]);
    return c;
  }
  if (pid == 0) {
    ::close(fds[0]);
    // A crash here is the finding, reported by the parent; a sanitizer's
    // report of LMDB faulting on garbage would only bury it.
    int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) ::dup2(null, STDERR_FILENO);
    std::string out = to_json(check_spool_here(dir, opts));
    for (size_t off = 0; off < out.size();) {
      ssize_t n = ::write(fds[1], out.data() + off, out.size() - off);
      if (n <= 0) ::_exit(3);
      off += size_t(n);
    }
    ::_exit(0);  // no atexit handlers, no destructors of the parent's objects
  }
  ::close(fds[1]);
  std::string answer;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  bool timed_out = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int r = ::poll(&p, 1, int(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buf, size_t(n));
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    c.fatal = fmt::format("checking it did not finish within {} s: LMDB loops on its damaged pages", timeout_s);
    return c;
  }
  if (WIFSIGNALED(status)) {
    c.fatal = fmt::format("LMDB crashed reading it ({}): its pages are damaged", strsignal(WTERMSIG(status)));
    return c;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    c.fatal = fmt::format("the check died reading it (exit status {}): its pages are damaged",
                          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return c;
  }
  return from_json(answer);
}

std::string damaged_advice(const SpoolCheck& c, const std::string& dir) {
  return fmt::format(
      "spool {} is damaged: {}. Nothing was changed. See `ferryctl spool check`; then restore {} from a "
      "backup, or move it aside (mv {} {}.damaged) to start with an empty spool, keeping the damaged copy "
      "for recovery",
      c.file, c.fatal, dir, dir, dir);
}

}  // namespace ferry::spool
