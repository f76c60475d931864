// A damaged spool: every kind of damage gives a clear finding from
// check_spool (which walks in a forked child), never a crash or a hang of
// this process; checksums make a flipped body or envelope byte
// Errc::corrupt (quarantined by the daemon, never sent); records written
// before checksums still load.
#include <doctest/doctest.h>

#include <lmdb.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>

#include "spool/spool.h"
#include "spool/spool_record.h"
#include "spool/spool_verify.h"
#include "temp_dir.h"

using namespace ferry;
using namespace ferry::spool;
namespace fs = std::filesystem;

using ferry::test::TempDir;

namespace {

smtp::Envelope envelope(std::string id, std::string sender = "app@example.com") {
  smtp::Envelope e;
  e.id = std::move(id);
  e.sender = std::move(sender);
  e.next_attempt_ms = 100;
  e.rcpts.push_back({"r@example.org", "", smtp::kNotifyFailure, smtp::RcptState::pending, 0, 0, ""});
  return e;
}

std::string body_of(int i) {
  // Bodies of two sizes: inline in leaf pages and in overflow pages.
  std::string b = "Received: from test\r\nSubject: " + std::to_string(i) + "\r\n\r\nBODY-MARK-" +
                  std::to_string(1000 + i) + "\r\n";
  b.append(i % 2 ? 6000 : 200, 'x');
  return b;
}

constexpr int kMessages = 30;

// A spool of kMessages messages, closed; `compact`: rewritten without free
// pages, so that every page of the file is a live one.
void populate(const std::string& dir, bool compact = false) {
  {
    auto s = open_lmdb_spool({dir, 32 << 20, true, nullptr});
    REQUIRE(s.ok());
    for (int i = 0; i < kMessages; ++i) {
      WriteRequest r{InsertMessage{envelope("ID" + std::to_string(1000 + i),
                                           i == 7 ? "flip-me@example.com" : "app@example.com"),
                                   body_of(i), {}},
                     {}, {}};
      WriteRequest* p = &r;
      (*s)->apply({&p, 1});
      REQUIRE(r.result.ok());
    }
  }
  if (!compact) return;
  std::string tmp = dir + "/compact";
  fs::create_directory(tmp);
  MDB_env* env;
  mdb_env_create(&env);
  mdb_env_set_maxdbs(env, 16);
  REQUIRE(mdb_env_open(env, dir.c_str(), MDB_RDONLY, 0600) == 0);
  REQUIRE(mdb_env_copy2(env, tmp.c_str(), MDB_CP_COMPACT) == 0);
  mdb_env_close(env);
  fs::rename(tmp + "/data.mdb", dir + "/data.mdb");
  fs::remove_all(tmp);
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
void spit(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

SpoolCheck check(const std::string& dir, bool bodies = false) {
  return check_spool(dir, {nullptr, bodies, 20});
}

}  // namespace

TEST_CASE("spool check: a missing data file is a new spool; a sound one is ok") {
  TempDir dir;
  auto c = check(dir.path);
  CHECK_FALSE(c.exists);
  CHECK(c.ok());
  populate(dir.path);
  c = check(dir.path, true);
  CHECK_MESSAGE(c.ok(), to_json(c));
  CHECK(c.messages == kMessages);
  CHECK(c.bodies == kMessages);
  CHECK(c.scheduled == kMessages);
  // The same walk in this process, where the sanitizers see it.
  auto here = check_spool_here(dir.path, {nullptr, true, 0});
  CHECK_MESSAGE(here.ok(), to_json(here));
  CHECK(here.messages == kMessages);
}

TEST_CASE("spool check: damage to the file is refused with a clear reason, never a signal here") {
  struct Case {
    const char* name;
    std::function<void(std::string&)> damage;
    const char* says;
  };
  std::mt19937 rng(42);
  std::vector<Case> cases = {
      {"zero length", [](std::string& d) { d.clear(); }, "empty"},
      {"one page left", [](std::string& d) { d.resize(4096); }, "truncated"},
      {"truncated to half", [](std::string& d) { d.resize(d.size() / 2 / 4096 * 4096); }, "truncated"},
      {"64 KiB of random bytes in the middle",
       [&](std::string& d) {
         size_t at = d.size() / 2 / 4096 * 4096 - 8 * 4096;
         for (size_t i = 0; i < 64 * 1024 && at + i < d.size(); ++i) d[at + i] = char(rng());
       },
       ""},
      {"corrupted page headers",
       [](std::string& d) {
         for (size_t pg = 2; (pg + 1) * 4096 <= d.size(); ++pg)
           for (size_t i = 0; i < 16; ++i) d[pg * 4096 + i] = char(0xA5);
       },
       ""},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    TempDir dir;
    populate(dir.path, true);
    std::string data = slurp(dir.path + "/data.mdb");
    REQUIRE(data.size() > 20 * 4096);
    c.damage(data);
    spit(dir.path + "/data.mdb", data);
    auto r = check(dir.path);
    CHECK(r.exists);
    CHECK_MESSAGE(!r.fatal.empty(), to_json(r));
    CHECK_MESSAGE(r.fatal.find(c.says) != std::string::npos, r.fatal);
    CHECK(r.file == dir.path + "/data.mdb");
    std::string advice = damaged_advice(r, dir.path);
    CHECK(advice.find(dir.path + "/data.mdb") != std::string::npos);
    CHECK(advice.find("ferryctl spool check") != std::string::npos);
  }
}

TEST_CASE("checksums: a flipped body byte is Errc::corrupt, never the damaged bytes") {
  TempDir dir;
  populate(dir.path);
  std::string data = slurp(dir.path + "/data.mdb");
  size_t n = 0;
  size_t at = data.find("BODY-MARK-1003");  // an overflow-page body
  REQUIRE(at != std::string::npos);
  data[at + 3] ^= 0x01;
  spit(dir.path + "/data.mdb", data);
  auto c = check(dir.path);  // the start check reads headers, not every body
  CHECK(c.fatal.empty());
  auto full = check(dir.path, true);  // ferryctl spool check --bodies
  CHECK(full.fatal.empty());
  CHECK(full.problem_count == 1);
  REQUIRE_FALSE(full.problems.empty());
  CHECK(full.problems[0].find("ID1003") != std::string::npos);
  auto s = open_lmdb_spool({dir.path, 32 << 20, true, nullptr});
  REQUIRE(s.ok());
  auto b = (*s)->get_body("ID1003");
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().code == Errc::corrupt);
  CHECK(*(*s)->get_body("ID1004") == body_of(4));
  // An inline (leaf page) body too.
  s->reset();
  data = slurp(dir.path + "/data.mdb");
  n = 0;
  for (at = data.find("BODY-MARK-1002"); at != std::string::npos; at = data.find("BODY-MARK-1002", at + 1), ++n)
    data[at] ^= 0x20;
  REQUIRE(n > 0);
  spit(dir.path + "/data.mdb", data);
  s = open_lmdb_spool({dir.path, 32 << 20, true, nullptr});
  REQUIRE(s.ok());
  CHECK((*s)->get_body("ID1002").error().code == Errc::corrupt);
}

TEST_CASE("checksums: a flipped envelope byte is Errc::corrupt and reported for quarantine") {
  TempDir dir;
  populate(dir.path);
  std::string data = slurp(dir.path + "/data.mdb");
  // Every copy: stale copies of the leaf page (copy-on-write) hold it too.
  size_t n = 0;
  for (size_t at = data.find("flip-me@example.com"); at != std::string::npos;
       at = data.find("flip-me@example.com", at + 1), ++n)
    data[at] ^= 0x02;  // "dlip-me": still a valid-looking record, only the checksum knows
  REQUIRE(n > 0);
  spit(dir.path + "/data.mdb", data);
  auto c = check(dir.path);
  CHECK(c.fatal.empty());
  CHECK(c.problem_count == 1);
  REQUIRE_FALSE(c.problems.empty());
  CHECK(c.problems[0].find("ID1007") != std::string::npos);
  CHECK(c.problems[0].find("checksum") != std::string::npos);
  auto s = open_lmdb_spool({dir.path, 32 << 20, true, nullptr});
  REQUIRE(s.ok());
  CHECK((*s)->get_envelope("ID1007").error().code == Errc::corrupt);
  std::vector<std::string> bad;
  int good = 0;
  REQUIRE((*s)->for_each_scheduled([&](const smtp::Envelope&) { ++good; return true; },
                                   [&](const std::string& id, int64_t) { bad.push_back(id); })
              .ok());
  CHECK(good == kMessages - 1);
  CHECK(bad == std::vector<std::string>{"ID1007"});
}

TEST_CASE("checksums: records written before them (envelope v1, raw body) still load") {
  TempDir dir;
  {
    auto s = open_lmdb_spool({dir.path, 8 << 20, true, nullptr});
    REQUIRE(s.ok());
  }
  auto e = envelope("OLD1");
  std::string v2 = encode_envelope(e);
  std::string v1 = v2.substr(0, v2.size() - 4);  // version 1: the same fields, no checksum
  v1[0] = 1;
  std::string raw = "Received: from old\r\n\r\nold body\r\n";
  {
    MDB_env* env;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 16);
    REQUIRE(mdb_env_open(env, dir.path.c_str(), 0, 0600) == 0);
    MDB_txn* txn;
    REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
    auto put = [&](const char* db, std::string k, std::string v) {
      MDB_dbi dbi;
      REQUIRE(mdb_dbi_open(txn, db, 0, &dbi) == 0);
      MDB_val kv{k.size(), k.data()}, vv{v.size(), v.data()};
      REQUIRE(mdb_put(txn, dbi, &kv, &vv, 0) == 0);
    };
    put("msg", "OLD1", v1);
    put("body", "OLD1", raw);
    put("sched", sched_key(e.next_attempt_ms, "OLD1"), "");
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
  }
  auto c = check(dir.path, true);
  CHECK_MESSAGE(c.ok(), to_json(c));
  auto s = open_lmdb_spool({dir.path, 8 << 20, true, nullptr});
  REQUIRE(s.ok());
  CHECK((*s)->get_envelope("OLD1")->sender == "app@example.com");
  CHECK(*(*s)->get_body("OLD1") == raw);
  CHECK(decode_envelope("OLD1", v1).ok());
}

TEST_CASE("body frame: round trip, every single-bit flip caught, old raw bodies pass through") {
  std::string body = "Received: by x\r\n\r\nhello\r\n";
  std::string framed = frame_body(body);
  CHECK(framed.size() == body.size() + kBodyFrameSize);
  CHECK(is_framed_body(framed));
  CHECK(*unframe_body("I", framed) == body);
  for (size_t i = 0; i < framed.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      std::string d = framed;
      d[i] ^= char(1 << bit);
      CHECK_FALSE(unframe_body("I", d).ok());
    }
  CHECK(*unframe_body("I", body) == body);  // pre-checksum body
  CHECK(*unframe_body("I", "From: x\r\n") == "From: x\r\n");
  CHECK(*unframe_body("I", "") == "");
  CHECK(unframe_body("I", std::string("\0FB\x02junk", 8)).error().code == Errc::corrupt);  // damaged magic
  CHECK(unframe_body("I", std::string("\x01" "FB\x01junk", 8)).error().code == Errc::corrupt);
  CHECK(unframe_body("I", framed.substr(0, 6)).error().code == Errc::corrupt);
}
