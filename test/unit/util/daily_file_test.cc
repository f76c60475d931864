// util/daily_file: daily rotation, retention deletion, line removal, and
// appends that never wait for a rewrite running on another thread.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "util/daily_file.h"
#include "temp_dir.h"

using namespace ferry;
namespace fs = std::filesystem;

using ferry::test::TempDir;

namespace {

constexpr int64_t kDay = 86'400'000;
constexpr int64_t kNov20 = 1'795'132'800'000;  // 2026-11-20T00:00:00Z

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void touch(const fs::path& p, const std::string& content, int64_t mtime_ms) {
  std::ofstream(p, std::ios::binary) << content;
  timespec ts[2] = {{mtime_ms / 1000, 0}, {mtime_ms / 1000, 0}};
  utimensat(AT_FDCWD, p.c_str(), ts, 0);
}

// A DailyFile "ev.log" with a 30-day retention, opened on 2026-11-20.
struct OpenFile {
  TempDir d;
  fs::path file = d / "ev.log";
  DailyFile f{file.string(), 30 * kDay};
  OpenFile() { REQUIRE(f.open(kNov20)); }
};

}  // namespace

TEST_CASE("day_of and expiry use UTC days; a day expires when its start is past the retention") {
  CHECK(DailyFile::day_of(kNov20) == "2026-11-20");
  CHECK(DailyFile::day_of(kNov20 - 1) == "2026-11-19");
  CHECK(DailyFile::day_of(kNov20 + kDay - 1) == "2026-11-20");
  // Retention 2 days: 2026-11-20 goes as soon as its first millisecond is
  // more than 2 days old, so no line in it outlives the retention.
  CHECK_FALSE(DailyFile::expired("2026-11-20", kNov20 + 2 * kDay, 2 * kDay));
  CHECK(DailyFile::expired("2026-11-20", kNov20 + 2 * kDay + 1, 2 * kDay));
  CHECK_FALSE(DailyFile::expired("2026-13-01", kNov20 * 2, 1));  // not a day: never ours to delete
  CHECK_FALSE(DailyFile::expired("2026-1-011", kNov20 * 2, 1));
}

TEST_CASE("rotates at UTC midnight and deletes only expired rotated files of its own name") {
  TempDir d;
  fs::path file = d / "events.jsonl";
  touch(d / "events.jsonl.2026-11-01", "old\n", kNov20);
  touch(d / "events.jsonl.2026-11-19", "older\n", kNov20);
  touch(d / "events.jsonl.keep", "not rotated by us\n", kNov20);
  touch(d / "other.jsonl.2026-11-01", "another file's\n", kNov20);
  touch(d / "events.jsonl.2026-11-19.erase-tmp", "crashed erase\n", kNov20);

  DailyFile f(file.string(), 2 * kDay);
  REQUIRE(f.open(kNov20 + 10 * 3'600'000));  // 10:00 on the 20th
  CHECK_FALSE(fs::exists(d / "events.jsonl.2026-11-01"));
  CHECK(fs::exists(d / "events.jsonl.2026-11-19"));  // its start is 34 h old
  CHECK(fs::exists(d / "events.jsonl.keep"));
  CHECK(fs::exists(d / "other.jsonl.2026-11-01"));
  CHECK_FALSE(fs::exists(d / "events.jsonl.2026-11-19.erase-tmp"));

  f.append("a\nb\n", kNov20 + 11 * 3'600'000);
  f.append("c\n", kNov20 + kDay + 5);  // first event of the 21st rotates
  CHECK(slurp(d / "events.jsonl.2026-11-20") == "a\nb\n");
  CHECK(slurp(file) == "c\n");

  // A quiet day: the periodic tick rotates without any event.
  f.tick(kNov20 + 2 * kDay + 5);
  CHECK(slurp(d / "events.jsonl.2026-11-21") == "c\n");
  CHECK_FALSE(fs::exists(d / "events.jsonl.2026-11-19"));  // now expired,
  CHECK_FALSE(fs::exists(d / "events.jsonl.2026-11-20"));  // and so is this one

  f.tick(kNov20 + 2 * kDay + 6);  // nothing new: no empty rotated file
  f.tick(kNov20 + 3 * kDay + 6);
  CHECK_FALSE(fs::exists(d / "events.jsonl.2026-11-22"));
  CHECK_FALSE(fs::exists(d / "events.jsonl.2026-11-21"));
}

TEST_CASE("an existing file from an earlier day is rotated at open, appending to a rotated file of that day") {
  TempDir d;
  fs::path file = d / "ev.log";
  touch(d / "ev.log.2026-11-18", "first run\n", kNov20);
  touch(file, "second run\n", kNov20 - 2 * kDay + 3'600'000);  // last written on the 18th
  DailyFile f(file.string(), 30 * kDay);
  REQUIRE(f.open(kNov20 + 1000));
  CHECK(slurp(d / "ev.log.2026-11-18") == "first run\nsecond run\n");
  f.append("today\n", kNov20 + 2000);
  CHECK(slurp(file) == "today\n");
}

TEST_CASE("open reports a path that cannot be written") {
  DailyFile f("/nonexistent-dir/ev.log", kDay);
  auto r = f.open(kNov20);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("/nonexistent-dir/ev.log") != std::string::npos);
}

TEST_CASE("remove_lines rewrites the file and its rotated copies; appends during it are kept") {
  OpenFile o;
  auto& [d, file, f] = o;
  f.append("alice 1\nbob 1\n", kNov20 + 1);
  f.append("bob 2\ncarol 1\n", kNov20 + kDay + 1);

  std::atomic<bool> inside{false}, appended{false}, done{false};
  Expected<size_t> removed = size_t(0);
  std::thread worker([&] {
    removed = f.remove_lines([&](std::string_view line) {
      inside = true;
      for (int i = 0; i < 5000 && !appended; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return line.starts_with("bob");
    });
    done = true;
  });
  for (int i = 0; i < 5000 && !inside; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(inside);
  f.append("dave 1\n", kNov20 + kDay + 2);  // must not block: buffered
  f.reopen();                                // nor this: deferred to the next tick
  CHECK_FALSE(done);                         // (had either waited, the rewrite would be over)
  appended = true;
  worker.join();
  REQUIRE(removed);
  CHECK(*removed == 2);
  f.tick(kNov20 + kDay + 3);
  CHECK(slurp(d / "ev.log.2026-11-20") == "alice 1\n");
  CHECK(slurp(file) == "carol 1\ndave 1\n");
  f.append("erin 1\n", kNov20 + kDay + 4);  // the reopened descriptor is the new file
  CHECK(slurp(file) == "carol 1\ndave 1\nerin 1\n");
}

TEST_CASE("reopen starts a new file after an external rotation") {
  OpenFile o;
  auto& [d, file, f] = o;
  f.append("one\n", kNov20 + 1);
  fs::rename(file, d / "ev.log.1");
  f.append("two\n", kNov20 + 2);  // still the moved file
  f.reopen();
  f.append("three\n", kNov20 + 3);
  CHECK(slurp(d / "ev.log.1") == "one\ntwo\n");
  CHECK(slurp(file) == "three\n");
}
