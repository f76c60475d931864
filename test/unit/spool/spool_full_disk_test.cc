// A spool on a real, small filesystem (tmpfs) that fills up: inserts are
// refused with Errc::full before the disk is full, writes that still hit
// the full disk fail with Errc::full (not an I/O error), nothing committed
// is lost, and the same open spool commits again once space returns.
// Needs root to mount; skipped (with a message) where mount is not allowed.
// Also the pure space arithmetic of spool_space.h, table-driven.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "spool/spool.h"
#include "spool/spool_space.h"

using namespace ferry;
using namespace ferry::spool;

namespace {

struct Tmpfs {
  std::string path;
  bool mounted = false;
  explicit Tmpfs(const char* size) {
    char tmpl[] = "/tmp/ferry-tmpfs-XXXXXX";
    path = mkdtemp(tmpl);
    mounted = ::mount("tmpfs", path.c_str(), "tmpfs", 0, (std::string("size=") + size).c_str()) == 0;
  }
  ~Tmpfs() {
    if (mounted) ::umount2(path.c_str(), MNT_DETACH);
    ::rmdir(path.c_str());
  }
};

smtp::Envelope envelope(std::string id) {
  smtp::Envelope e;
  e.id = std::move(id);
  e.sender = "app@example.com";
  e.next_attempt_ms = 100;
  e.rcpts.push_back({"r@example.org", "", smtp::kNotifyFailure, smtp::RcptState::pending, 0, 0, ""});
  return e;
}

using Op = decltype(WriteRequest::op);

Expected<void> run(Spool& s, Op op) {
  WriteRequest r{std::move(op), {}, {}};
  WriteRequest* p = &r;
  s.apply({&p, 1});
  return r.result;
}

// Writes until the filesystem refuses: what is left is less than a block.
void fill(const std::string& file) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE(fd >= 0);
  std::string chunk(64 * 1024, 'f');
  for (int i = 0; i < 100000; ++i) {
    ssize_t n = ::write(fd, chunk.data(), chunk.size());
    if (n < ssize_t(chunk.size())) break;
  }
  std::string byte(1, 'f');
  while (::write(fd, byte.data(), 1) == 1) {
  }
  ::close(fd);
}

}  // namespace

TEST_CASE("full filesystem: Errc::full, nothing lost, the same spool commits again when space returns") {
  Tmpfs fs("4m");
  if (!fs.mounted) {
    MESSAGE("skipped: cannot mount a tmpfs here (", std::strerror(errno), "); needs root");
    return;
  }
  std::string dir = fs.path + "/spool";
  // spool.max_size far above the filesystem: the map never fills, the disk does.
  auto s = open_lmdb_spool({dir, 64 << 20, true, nullptr});
  REQUIRE_MESSAGE(s.ok(), s.error().message);
  std::string body(48 * 1024, 'b');
  std::vector<std::string> accepted;
  bool full = false;
  for (int i = 0; i < 500 && !full; ++i) {
    std::string id = "M" + std::to_string(1000 + i);
    auto r = run(**s, InsertMessage{envelope(id), body, {}});
    if (r.ok()) {
      accepted.push_back(id);
    } else {
      CHECK_MESSAGE(r.error().code == Errc::full, r.error().message);
      full = true;
    }
  }
  REQUIRE(full);
  REQUIRE(accepted.size() > 20);
  // Now the disk itself fills (another program, a log file): writes that
  // are not refused up front (log events, updates) hit ENOSPC in LMDB.
  fill(fs.path + "/filler");
  bool hit = false;
  for (int i = 0; i < 200 && !hit; ++i) {
    std::string json = "{\"event\":\"deferred\",\"response\":\"" + std::string(16 * 1024, 'x') + "\"}";
    auto r = run(**s, AppendLog{{LogEvent{i, json, {}}}});
    if (!r.ok()) {
      CHECK_MESSAGE(r.error().code == Errc::full, r.error().message);
      hit = true;
    }
  }
  CHECK(hit);
  CHECK(run(**s, InsertMessage{envelope("REFUSED"), body, {}}).error().code == Errc::full);
  for (const auto& id : accepted) {
    CHECK((*s)->get_envelope(id).ok());
    CHECK((*s)->get_body(id).ok());
  }
  // Space returns: the same open spool commits again, no restart. The
  // spool itself still fills the disk to its reserve, so deliveries
  // (deletes) make room before a new message fits.
  std::filesystem::remove(fs.path + "/filler");
  auto upd = envelope(accepted[0]);
  upd.next_attempt_ms = 5000;
  CHECK(run(**s, UpdateMessage{upd, 100, {LogEvent{1, "{\"event\":\"deferred\"}", {}}}}).ok());
  constexpr size_t kDrained = 8;
  for (size_t i = 1; i <= kDrained; ++i) CHECK(run(**s, DeleteMessage{accepted[i]}).ok());
  CHECK(run(**s, InsertMessage{envelope("AFTER"), body, {}}).ok());
  s->reset();
  // The file is sound: LMDB's own tools read all of it.
  std::string q = "'" + dir + "'";
  CHECK(std::system(("mdb_stat -a " + q + " >/dev/null").c_str()) == 0);
  CHECK(std::system(("mdb_dump -a " + q + " >/dev/null").c_str()) == 0);
  auto again = open_lmdb_spool({dir, 64 << 20, true, nullptr});
  REQUIRE(again.ok());
  CHECK(*(*again)->message_count() == accepted.size() - kDrained + 1);
  auto first = (*again)->get_envelope(accepted[0]);
  REQUIRE(first.ok());
  CHECK(first->next_attempt_ms == 5000);
  auto after = (*again)->get_body("AFTER");
  REQUIRE(after.ok());
  CHECK(*after == body);
  for (size_t i = kDrained + 1; i < accepted.size(); ++i) {
    auto b = (*again)->get_body(accepted[i]);
    REQUIRE(b.ok());
    CHECK(*b == body);
  }
}

TEST_CASE("filesystem space arithmetic") {
  constexpr uint64_t K = 1024, M = 1024 * 1024;
  struct Reserve {
    uint64_t spool_reserve, fs_total, want;
  };
  for (auto c : std::vector<Reserve>{
           {64 * M, 4 * M, 256 * K},      // tiny filesystem: the floor
           {64 * M, 1024 * M, 64 * M},    // large filesystem: the spool's reserve
           {64 * M, 512 * M, 32 * M},     // 1/16 of the filesystem caps it
           {512 * K, 100 * M, 512 * K},
       })
    CHECK(fs_reserve(c.spool_reserve, c.fs_total) == c.want);

  CHECK(insert_room({false, 0, 0}, 10, 5) == UINT64_MAX);  // unknown: refuse nothing
  CHECK(insert_room({true, 100, 10}, 50, 20) == 40);       // free + the file's unused pages
  CHECK(insert_room({true, 100, 10}, 20, 50) == 10);       // file smaller than "used": no slack

  FsSpace tight{true, 4 * M, 4 * K}, roomy{true, 4 * M, 2 * M};
  CHECK(failure_is_full(ENOSPC, roomy, 256 * K));
  CHECK(failure_is_full(EDQUOT, roomy, 256 * K));
  CHECK(failure_is_full(EIO, tight, 256 * K));   // LMDB's "short write" on a full disk
  CHECK_FALSE(failure_is_full(EIO, roomy, 256 * K));  // a real I/O error stays one
  CHECK_FALSE(failure_is_full(EIO, {}, 256 * K));
  CHECK_FALSE(failure_is_full(EACCES, tight, 256 * K));
}
