// See daily_file.h.
#include "util/daily_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "util/log.h"

namespace ferry {

namespace fs = std::filesystem;

namespace {

// Parses "YYYY-MM-DD" strictly; the UTC midnight starting it, in ms.
bool day_start_ms(std::string_view day, int64_t& out) {
  if (day.size() != 10 || day[4] != '-' || day[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (day[i] < '0' || day[i] > '9') return false;
  auto num = [&](size_t at, size_t n) {
    int v = 0;
    for (size_t i = at; i < at + n; ++i) v = v * 10 + (day[i] - '0');
    return v;
  };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31) return false;
  out = int64_t(timegm(&tm)) * 1000;
  return true;
}

fs::path dir_of(const std::string& path) {
  fs::path p = fs::path(path).parent_path();
  return p.empty() ? fs::path(".") : p;
}

// FILE and the FILE.YYYY-MM-DD rotated from it, in the same directory.
bool is_rotated(const std::string& name, const std::string& base, std::string* day) {
  int64_t ignored;
  if (name.size() != base.size() + 11 || name.compare(0, base.size(), base) != 0 || name[base.size()] != '.')
    return false;
  std::string d = name.substr(base.size() + 1);
  if (!day_start_ms(d, ignored)) return false;
  if (day) *day = d;
  return true;
}

}  // namespace

DailyFile::DailyFile(std::string path, int64_t retention_ms) : path_(std::move(path)), retention_ms_(retention_ms) {}

DailyFile::~DailyFile() {
  if (!pending_.empty()) {
    std::lock_guard lock(mu_);
    write_out(pending_);
  }
  if (fd_ >= 0) ::close(fd_);
}

std::string DailyFile::day_of(int64_t ms) {
  std::time_t secs = std::time_t(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

bool DailyFile::expired(const std::string& day, int64_t now_ms, int64_t retention_ms) {
  int64_t start;
  return day_start_ms(day, start) && start < now_ms - retention_ms;
}

void DailyFile::report(bool ok, const std::string& what) {
  // Log a failure once and the recovery once, not a line per event.
  if (!ok && !failed_) log::error("delivery_log.file_error", {{"path", path_}, {"error", what}});
  if (ok && failed_) log::info("delivery_log.file_recovered", {{"path", path_}});
  failed_ = !ok;
}

Expected<void> DailyFile::open_file() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    std::string e = std::strerror(errno);
    report(false, e);
    return Error(Errc::io, "delivery_log.file: cannot open " + path_ + ": " + e);
  }
  return {};
}

void DailyFile::rotate_if_needed(int64_t now_ms) {
  std::string today = day_of(now_ms);
  struct stat st {};
  bool exists = ::stat(path_.c_str(), &st) == 0;
  if (day_.empty()) {
    // First look at an existing FILE: its lines belong to the day it was
    // last written (ferryd may have been down over midnight).
    day_ = exists ? day_of(int64_t(st.st_mtim.tv_sec) * 1000) : today;
  }
  if (day_ == today) return;
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (exists && st.st_size > 0) {
    std::string target = path_ + "." + day_;
    std::error_code ec;
    if (!fs::exists(target, ec)) {
      fs::rename(path_, target, ec);
    } else {
      // Rotated already (an earlier run crashed between rename and reopen,
      // or the clock stepped back): keep every line, in order.
      std::ifstream in(path_, std::ios::binary);
      std::ofstream out(target, std::ios::binary | std::ios::app);
      out << in.rdbuf();
      if (out.good()) fs::remove(path_, ec);
    }
    if (ec) report(false, "rotate to " + target + ": " + ec.message());
    else log::info("delivery_log.file_rotated", {{"path", target}});
  }
  day_ = today;
}

void DailyFile::prune(int64_t now_ms) {
  pruned_ms_ = now_ms;
  std::error_code ec;
  std::string base = fs::path(path_).filename().string();
  // increment(ec), not a range-for: its operator++ throws on a directory
  // that goes away mid-walk, and prune runs in a libuv timer callback.
  for (fs::directory_iterator it(dir_of(path_), ec), end; !ec && it != end; it.increment(ec)) {
    const auto& e = *it;
    std::string name = e.path().filename().string(), day;
    if (name.starts_with(base) && name.ends_with(".erase-tmp")) {
      // Left by an erase that crashed before its rename: it holds lines
      // no one would otherwise delete.
      std::error_code rm;
      fs::remove(e.path(), rm);
      continue;
    }
    if (!is_rotated(name, base, &day) || !expired(day, now_ms, retention_ms_)) continue;
    std::error_code rm;
    if (fs::remove(e.path(), rm))
      log::info("delivery_log.file_deleted", {{"path", e.path().string()}});
    else if (rm)
      report(false, "delete " + e.path().string() + ": " + rm.message());
  }
}

void DailyFile::write_out(std::string_view data) {
  if (fd_ < 0 && !open_file()) return;
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      report(false, std::strerror(n < 0 ? errno : EIO));
      return;
    }
    data.remove_prefix(size_t(n));
  }
  report(true, "");
}

Expected<void> DailyFile::open(int64_t now_ms) {
  std::lock_guard lock(mu_);
  rotate_if_needed(now_ms);
  prune(now_ms);
  return open_file();
}

void DailyFile::append(std::string_view lines, int64_t now_ms) {
  std::unique_lock lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) {
    pending_.append(lines);
    return;
  }
  if (reopen_pending_) reopen_locked();
  rotate_if_needed(now_ms);
  if (!pending_.empty()) {
    write_out(pending_);
    pending_.clear();
  }
  write_out(lines);
}

void DailyFile::tick(int64_t now_ms) {
  std::unique_lock lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;  // a rewrite is running; the next tick does it
  if (reopen_pending_) reopen_locked();
  std::string day = day_;
  rotate_if_needed(now_ms);
  // The directory walk once a minute is plenty: days are long.
  if (day != day_ || now_ms - pruned_ms_ >= 60'000 || now_ms < pruned_ms_) prune(now_ms);
  if (!pending_.empty()) {
    write_out(pending_);
    pending_.clear();
  }
}

void DailyFile::reopen() {
  std::unique_lock lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) {
    reopen_pending_ = true;  // a rewrite holds the file: the next append or tick reopens
    return;
  }
  reopen_locked();
}

void DailyFile::reopen_locked() {
  reopen_pending_ = false;
  // day_ stays: appends keep it at today, and a FILE created now is today's.
  (void)open_file();
  log::info("log.reopen", {{"target", path_}});
}

Expected<size_t> DailyFile::remove_lines(const std::function<bool(std::string_view)>& drop) {
  std::lock_guard lock(mu_);
  std::string base = fs::path(path_).filename().string();
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir_of(path_), ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name == base || is_rotated(name, base, nullptr)) files.push_back(it->path());
  }
  if (ec) return Error(Errc::io, "delivery_log.file: " + ec.message());
  size_t removed = 0;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) return Error(Errc::io, "delivery_log.file: cannot read " + f.string());
    std::string kept, line;
    size_t here = 0;
    while (std::getline(in, line)) {
      if (drop(line)) {
        ++here;
        continue;
      }
      kept += line;
      kept += '\n';
    }
    if (here == 0) continue;
    // Write beside, fsync, rename: the erasure is durable, and a crash
    // leaves either the old file or the new one, never half of one.
    fs::path tmp = f;
    tmp += ".erase-tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return Error(Errc::io, "delivery_log.file: cannot write " + tmp.string() + ": " + std::strerror(errno));
    std::string_view rest = kept;
    bool ok = true;
    while (ok && !rest.empty()) {
      ssize_t n = ::write(fd, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) rest.remove_prefix(size_t(n));
    }
    ok = ok && ::fsync(fd) == 0;
    ::close(fd);
    if (ok) fs::rename(tmp, f, ec);
    if (!ok || ec) {
      fs::remove(tmp, ec);
      return Error(Errc::io, "delivery_log.file: cannot rewrite " + f.string());
    }
    removed += here;
    if (f.filename() == base && fd_ >= 0) (void)open_file();  // FILE is a new inode now
  }
  return removed;
}

}  // namespace ferry
