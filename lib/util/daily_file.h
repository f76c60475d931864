// A line-oriented file that rotates itself once a UTC day and deletes its
// rotated copies when their oldest line is past a retention: the backing
// store of delivery_log.file (the JSON-lines event stream for log shippers).
//
// FILE is renamed to FILE.YYYY-MM-DD (the UTC day of its lines) on the
// first append or tick of a new day. A rotated file is deleted as soon as
// the *start* of its day is older than the retention, so no line outlives
// the retention (the last lines of a day go up to a day early). reopen()
// is for an external logrotate that moved FILE away.
//
// Appends use one write(2) per batch with O_APPEND and no fsync: the
// spool's log database is the durable copy; a line lost to a full disk is
// reported, never blocks mail.
//
// Thread use: append/tick/reopen run on the event loop; remove_lines runs
// on a worker thread (privacy erase). The loop never waits for the worker:
// while a rewrite holds the file, appends are buffered in memory and
// written by the next append or tick after it.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "util/expected.h"

namespace ferry {

class DailyFile {
 public:
  DailyFile(std::string path, int64_t retention_ms);
  ~DailyFile();
  DailyFile(const DailyFile&) = delete;
  DailyFile& operator=(const DailyFile&) = delete;

  // Rotates and prunes as tick() does, then opens FILE: the start-up and
  // reload check, so a path that cannot be written is refused up front.
  Expected<void> open(int64_t now_ms);
  // `lines`: whole lines, each ending in '\n'.
  void append(std::string_view lines, int64_t now_ms);
  // Rotates when the day changed, deletes expired rotated files, writes
  // lines buffered during a rewrite. Call at start and periodically.
  void tick(int64_t now_ms);
  // Closes and reopens FILE (SIGUSR1); during a rewrite, at the next
  // append or tick instead of waiting.
  void reopen();
  void set_retention(int64_t ms) { retention_ms_ = ms; }
  const std::string& path() const { return path_; }

  // Rewrites FILE and every FILE.YYYY-MM-DD without the lines for which
  // drop() is true; returns how many lines were removed.
  Expected<size_t> remove_lines(const std::function<bool(std::string_view)>& drop);

  // "YYYY-MM-DD" of a UTC time.
  static std::string day_of(int64_t ms);
  // Whether a rotated file of `day` must be deleted at now_ms.
  static bool expired(const std::string& day, int64_t now_ms, int64_t retention_ms);

 private:
  void rotate_if_needed(int64_t now_ms);  // mu_ held
  void prune(int64_t now_ms);             // mu_ held
  Expected<void> open_file();             // mu_ held
  void report(bool ok, const std::string& what);
  void write_out(std::string_view data);  // mu_ held
  void reopen_locked();                   // mu_ held

  std::string path_;
  int64_t retention_ms_;
  std::mutex mu_;
  int fd_ = -1;
  std::string day_;      // UTC day of the lines in FILE; empty until known
  std::string pending_;  // appended while remove_lines held mu_ (loop only)
  bool reopen_pending_ = false;  // SIGUSR1 came while remove_lines held mu_ (loop only)
  int64_t pruned_ms_ = 0;
  bool failed_ = false;  // last open or write failed (logged once)
};

}  // namespace ferry
