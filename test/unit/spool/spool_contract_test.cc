// One contract, every Spool implementation: insert, read back, schedule
// order, delete, full spool, record corruption, persistence (LMDB).
#include <doctest/doctest.h>

#include <lmdb.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "spool/spool.h"
#include "spool/spool_record.h"
#include "temp_dir.h"

using namespace ferry;
using namespace ferry::spool;

using ferry::test::TempDir;

namespace {

smtp::Envelope envelope(std::string id, int64_t next, size_t rcpts = 1) {
  smtp::Envelope e;
  e.id = std::move(id);
  e.sender = "app@example.com";
  e.created_ms = 1000;
  e.next_attempt_ms = next;
  e.size = 5;
  e.body = smtp::BodyType::eightbitmime;
  e.ret = smtp::DsnRet::hdrs;
  e.envid = "ENV1";
  e.client_ip = "127.0.0.1";
  e.auth_user = "app";
  for (size_t i = 0; i < rcpts; ++i)
    e.rcpts.push_back({"r" + std::to_string(i) + "@example.org", "rfc822;x", smtp::kNotifyFailure,
                       smtp::RcptState::pending, 0, 0, ""});
  return e;
}

Expected<void> insert(Spool& s, smtp::Envelope e, std::string body) {
  WriteRequest r{InsertMessage{std::move(e), std::move(body), {}}, {}, {}};
  WriteRequest* p = &r;
  s.apply({&p, 1});
  return r.result;
}

Expected<void> remove(Spool& s, std::string id) {
  WriteRequest r{DeleteMessage{std::move(id)}, {}, {}};
  WriteRequest* p = &r;
  s.apply({&p, 1});
  return r.result;
}

void contract(Spool& s) {
  SUBCASE("insert and read back") {
    REQUIRE(insert(s, envelope("B", 200, 3), "hello").ok());
    auto e = s.get_envelope("B");
    REQUIRE(e.ok());
    CHECK(e->sender == "app@example.com");
    CHECK(e->rcpts.size() == 3);
    CHECK(e->rcpts[2].address == "r2@example.org");
    CHECK(e->ret == smtp::DsnRet::hdrs);
    CHECK(e->envid == "ENV1");
    CHECK(*s.get_body("B") == "hello");
    CHECK(*s.message_count() == 1);
  }
  SUBCASE("schedule walk is in next-attempt order") {
    REQUIRE(insert(s, envelope("A", 300), "a").ok());
    REQUIRE(insert(s, envelope("B", 100), "b").ok());
    REQUIRE(insert(s, envelope("C", 200), "c").ok());
    std::string order;
    REQUIRE(s.for_each_scheduled([&](const smtp::Envelope& e) { order += e.id; return true; }).ok());
    CHECK(order == "BCA");
  }
  SUBCASE("delete removes envelope, body and schedule entry") {
    REQUIRE(insert(s, envelope("A", 1), "a").ok());
    REQUIRE(remove(s, "A").ok());
    CHECK(s.get_envelope("A").error().code == Errc::not_found);
    CHECK(s.get_body("A").error().code == Errc::not_found);
    int n = 0;
    REQUIRE(s.for_each_scheduled([&](const smtp::Envelope&) { ++n; return true; }).ok());
    CHECK(n == 0);
    CHECK(remove(s, "A").error().code == Errc::not_found);
  }
  SUBCASE("update moves the schedule entry; the last final recipient deletes everything") {
    auto e = envelope("U", 100, 2);
    WriteRequest ins{InsertMessage{e, "body", {LogEvent{5, "{\"event\":\"received\"}", {}}}}, {}, {}};
    WriteRequest* p = &ins;
    s.apply({&p, 1});
    REQUIRE(ins.result.ok());
    e.rcpts[0].state = smtp::RcptState::delivered;
    e.next_attempt_ms = 900;
    WriteRequest up{UpdateMessage{e, 100, {LogEvent{6, "{\"event\":\"delivered\"}", {}}}}, {}, {}};
    p = &up;
    s.apply({&p, 1});
    REQUIRE(up.result.ok());
    CHECK(s.get_envelope("U")->rcpts[0].state == smtp::RcptState::delivered);
    std::vector<int64_t> order;
    REQUIRE(s.for_each_scheduled([&](const smtp::Envelope& x) { order.push_back(x.next_attempt_ms); return true; }).ok());
    CHECK(order == std::vector<int64_t>{900});
    e.rcpts[1].state = smtp::RcptState::bounced;
    WriteRequest last{UpdateMessage{e, 900, {LogEvent{7, "{\"event\":\"bounced\"}", {}}}}, {}, {}};
    p = &last;
    s.apply({&p, 1});
    REQUIRE(last.result.ok());
    CHECK(s.get_envelope("U").error().code == Errc::not_found);
    CHECK(s.get_body("U").error().code == Errc::not_found);
    CHECK(*s.message_count() == 0);
    std::vector<std::string> events;
    REQUIRE(s.for_each_log(0, [&](const LogEvent& ev) { events.push_back(ev.json); }).ok());
    CHECK(events.size() == 3);
    CHECK(events[2] == "{\"event\":\"bounced\"}");
    events.clear();
    REQUIRE(s.for_each_log(6, [&](const LogEvent& ev) { events.push_back(ev.json); }).ok());
    CHECK(events.size() == 2);
  }
  SUBCASE("an update never resurrects a deleted or finished message") {
    auto e = envelope("GONE", 100, 2);
    REQUIRE(insert(s, e, "body").ok());
    REQUIRE(remove(s, "GONE").ok());
    e.rcpts[0].attempts = 1;
    e.next_attempt_ms = 700;
    WriteRequest up{UpdateMessage{e, 100, {LogEvent{9, "{\"event\":\"deferred\"}", {}}}}, {}, {}};
    WriteRequest* p = &up;
    s.apply({&p, 1});
    CHECK(up.result.error().code == Errc::not_found);
    CHECK(s.get_envelope("GONE").error().code == Errc::not_found);
    CHECK(s.get_body("GONE").error().code == Errc::not_found);
    CHECK(*s.message_count() == 0);
    int n = 0;
    REQUIRE(s.for_each_scheduled([&](const smtp::Envelope&) { ++n; return true; }).ok());
    CHECK(n == 0);
    int events = 0;
    REQUIRE(s.for_each_log(0, [&](const LogEvent&) { ++events; }).ok());
    CHECK(events == 0);  // nothing written for it
    // Finished by a first update, then a late second one arrives.
    auto f = envelope("FIN", 100, 1);
    REQUIRE(insert(s, f, "body").ok());
    f.rcpts[0].state = smtp::RcptState::delivered;
    WriteRequest done{UpdateMessage{f, 100, {}}, {}, {}};
    f.rcpts[0].state = smtp::RcptState::pending;
    f.next_attempt_ms = 800;
    WriteRequest late{UpdateMessage{f, 100, {}}, {}, {}};
    WriteRequest* both[] = {&done, &late};
    s.apply(both);
    CHECK(done.result.ok());
    CHECK(late.result.error().code == Errc::not_found);
    CHECK(s.get_envelope("FIN").error().code == Errc::not_found);
    CHECK(*s.message_count() == 0);
  }
  SUBCASE("an update with a stale old_next_attempt_ms leaves no second schedule row") {
    auto e = envelope("STALE", 100, 1);
    REQUIRE(insert(s, e, "body").ok());
    e.next_attempt_ms = 900;
    WriteRequest up{UpdateMessage{e, 555, {}}, {}, {}};  // the caller's idea of the time is wrong
    WriteRequest* p = &up;
    s.apply({&p, 1});
    REQUIRE(up.result.ok());
    std::vector<int64_t> seen;
    REQUIRE(s.for_each_scheduled([&](const smtp::Envelope& x) { seen.push_back(x.next_attempt_ms); return true; }).ok());
    CHECK(seen == std::vector<int64_t>{900});
    REQUIRE(remove(s, "STALE").ok());
    seen.clear();
    REQUIRE(s.for_each_scheduled([&](const smtp::Envelope& x) { seen.push_back(x.next_attempt_ms); return true; }).ok());
    CHECK(seen.empty());
  }
  SUBCASE("a full spool refuses one message and keeps the others") {
    std::string big(200 * 1024, 'x');
    int accepted = 0;
    bool full = false;
    for (int i = 0; i < 200 && !full; ++i) {
      auto r = insert(s, envelope("M" + std::to_string(1000 + i), i), big);
      if (r.ok()) {
        ++accepted;
      } else {
        CHECK(r.error().code == Errc::full);
        full = true;
      }
    }
    CHECK(full);
    CHECK(accepted > 0);
    // A batch mixing a small and a too-big message commits the small one.
    WriteRequest small{InsertMessage{envelope("S", 1), "tiny", {}}, {}, {}};
    WriteRequest huge{InsertMessage{envelope("H", 1), std::string(4 << 20, 'y'), {}}, {}, {}};
    WriteRequest* batch[] = {&huge, &small};
    s.apply(batch);
    CHECK(huge.result.error().code == Errc::full);
    CHECK(small.result.ok());
    // Deletes still work in a full spool, and make room again.
    for (int i = 0; i < accepted; ++i) CHECK(remove(s, "M" + std::to_string(1000 + i)).ok());
    CHECK(insert(s, envelope("AFTER", 1), big).ok());
  }
  SUBCASE("log events by address: sender or recipient, any case, from a time on; deletes unindex") {
    std::vector<LogEvent> evs = {
        {10, R"({"event":"received","from":"Alice@A.example","rcpt":"bob@b.example"})", {}},
        {20, R"({"event":"received","from":"","rcpt":"alice@a.example"})", {}},
        {30, R"({"event":"received","from":"carol@c.example","rcpt":"bob@b.example"})", {}},
        {40, R"({"event":"delivered","from":"alice@a.example","rcpt":"alice@a.example"})", {}},
        {50, R"({"event":"received","from":"alice@a.examplex","rcpt":"x@y.example"})", {}},
    };
    WriteRequest add{AppendLog{evs}, {}, {}};
    WriteRequest* p = &add;
    s.apply({&p, 1});
    REQUIRE(add.result.ok());
    auto of = [&](std::string a, int64_t since = 0) {
      std::vector<int64_t> ts;
      std::vector<std::string> keys;
      REQUIRE(s.for_each_log_of(a, since, [&](const LogEvent& e) {
                 ts.push_back(e.ts_ms);
                 keys.push_back(e.key);
               }).ok());
      return std::pair{ts, keys};
    };
    CHECK(of("alice@a.example").first == std::vector<int64_t>{10, 20, 40});  // 40 once, not twice
    CHECK(of("alice@a.example", 15).first == std::vector<int64_t>{20, 40});
    CHECK(of("bob@b.example").first == std::vector<int64_t>{10, 30});
    CHECK(of("nobody@b.example").first.empty());
    WriteRequest del{DeleteLogEvents{{of("alice@a.example").second[1]}}, {}, {}};
    p = &del;
    s.apply({&p, 1});
    REQUIRE(del.result.ok());
    CHECK(of("alice@a.example").first == std::vector<int64_t>{10, 40});
    WriteRequest purge{PurgeLog{35, 100, 0}, {}, {}};
    p = &purge;
    s.apply({&p, 1});
    CHECK(of("alice@a.example").first == std::vector<int64_t>{40});
    CHECK(of("bob@b.example").first.empty());
    purge.op = PurgeLog{1000, 100, 0};
    s.apply({&p, 1});
    CHECK(of("alice@a.example").first.empty());
    CHECK(of("x@y.example").first.empty());
  }
}

}  // namespace

TEST_CASE("spool contract: memory") {
  auto s = make_mem_spool(2 * 1024 * 1024);
  contract(*s);
}

TEST_CASE("spool contract: LMDB") {
  TempDir dir;
  auto s = open_lmdb_spool({dir.path, 2 * 1024 * 1024, true, nullptr});
  REQUIRE_MESSAGE(s.ok(), s.error().message);
  contract(**s);
}

namespace {
size_t lmdb_entries(const std::string& path, const char* db) {
  MDB_env* env;
  mdb_env_create(&env);
  mdb_env_set_maxdbs(env, 16);
  REQUIRE(mdb_env_open(env, path.c_str(), MDB_RDONLY, 0600) == 0);
  MDB_txn* txn;
  mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
  MDB_dbi dbi;
  size_t n = 0;
  if (mdb_dbi_open(txn, db, 0, &dbi) == 0) {
    MDB_stat st;
    mdb_stat(txn, dbi, &st);
    n = st.ms_entries;
  }
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return n;
}
}  // namespace

TEST_CASE("LMDB log index: no entry outlives its event; an old spool is indexed at open") {
  TempDir dir;
  {
    auto s = open_lmdb_spool({dir.path, 8 << 20, true, nullptr});
    REQUIRE(s.ok());
    std::vector<LogEvent> evs;
    for (int i = 0; i < 30; ++i)
      evs.push_back({i, R"({"from":"a@x.example","rcpt":"r)" + std::to_string(i) + R"(@y.example"})", {}});
    WriteRequest add{AppendLog{evs}, {}, {}};
    WriteRequest* p = &add;
    (*s)->apply({&p, 1});
    REQUIRE(add.result.ok());
  }
  CHECK(lmdb_entries(dir.path, "log_addr") == 60);
  {
    // Simulate a spool written before the index existed.
    MDB_env* env;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 16);
    REQUIRE(mdb_env_open(env, dir.path.c_str(), 0, 0600) == 0);
    MDB_txn* txn;
    mdb_txn_begin(env, nullptr, 0, &txn);
    MDB_dbi dbi;
    REQUIRE(mdb_dbi_open(txn, "log_addr", 0, &dbi) == 0);
    mdb_drop(txn, dbi, 0);
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
  }
  CHECK(lmdb_entries(dir.path, "log_addr") == 0);
  auto s = open_lmdb_spool({dir.path, 8 << 20, true, nullptr});
  REQUIRE(s.ok());
  int n = 0;
  REQUIRE((*s)->for_each_log_of("r7@y.example", 0, [&](const LogEvent&) { ++n; }).ok());
  CHECK(n == 1);
  WriteRequest purge{PurgeLog{20, 100, 0}, {}, {}};
  WriteRequest* p = &purge;
  (*s)->apply({&p, 1});
  s->reset();
  CHECK(lmdb_entries(dir.path, "log_addr") == 20);  // 10 events left, two addresses each
}

TEST_CASE("LMDB: schedule rows never outlive their message") {
  TempDir dir;
  {
    auto s = open_lmdb_spool({dir.path, 8 << 20, true, nullptr});
    REQUIRE(s.ok());
    auto e = envelope("X", 100, 1);
    REQUIRE(insert(**s, e, "b").ok());
    e.next_attempt_ms = 300;
    WriteRequest up{UpdateMessage{e, 200, {}}, {}, {}};  // stale old time
    WriteRequest* p = &up;
    (*s)->apply({&p, 1});
    REQUIRE(up.result.ok());
    REQUIRE(remove(**s, "X").ok());
    WriteRequest late{UpdateMessage{e, 300, {}}, {}, {}};  // after the delete
    p = &late;
    (*s)->apply({&p, 1});
    CHECK(late.result.error().code == Errc::not_found);
  }
  CHECK(lmdb_entries(dir.path, "sched") == 0);
  CHECK(lmdb_entries(dir.path, "msg") == 0);
}

TEST_CASE("LMDB: a reopened environment (the MDB_PANIC path) keeps serving reads and writes") {
  TempDir dir;
  auto s = open_lmdb_spool({dir.path, 8 << 20, true, nullptr});
  REQUIRE(s.ok());
  REQUIRE(insert(**s, envelope("R1", 5), "one").ok());
  REQUIRE(lmdb_spool_force_reopen(**s));
  CHECK_FALSE(lmdb_spool_force_reopen(*make_mem_spool(1024)));
  REQUIRE(insert(**s, envelope("R2", 6), "two").ok());
  CHECK(*(*s)->get_body("R1") == "one");
  CHECK(*(*s)->get_body("R2") == "two");
  CHECK(*(*s)->message_count() == 2);
}

TEST_CASE("LMDB spool survives reopening") {
  TempDir dir;
  {
    auto s = open_lmdb_spool({dir.path, 8 << 20, true, nullptr});
    REQUIRE(s.ok());
    REQUIRE(insert(**s, envelope("P", 5), "persist").ok());
  }
  auto s = open_lmdb_spool({dir.path, 8 << 20, true, nullptr});
  REQUIRE(s.ok());
  CHECK(*(*s)->get_body("P") == "persist");
  CHECK((*s)->get_envelope("P")->rcpts.size() == 1);
}

TEST_CASE("envelope records: round trip, truncation and unknown versions") {
  auto e = envelope("ID", 77, 2);
  e.rcpts[1].state = smtp::RcptState::bounced;
  e.rcpts[1].last_code = 550;
  e.rcpts[1].last_response = "no such user";
  std::string rec = encode_envelope(e);
  auto back = decode_envelope("ID", rec);
  REQUIRE(back.ok());
  CHECK(back->rcpts[1].state == smtp::RcptState::bounced);
  CHECK(back->rcpts[1].last_code == 550);
  CHECK(back->next_attempt_ms == 77);
  for (size_t cut = 0; cut < rec.size(); ++cut)
    CHECK(decode_envelope("ID", rec.substr(0, cut)).error().code == Errc::corrupt);
  std::string v3 = rec;
  v3[0] = 3;
  CHECK(decode_envelope("ID", v3).error().message.find("unknown version 3") != std::string::npos);
  CHECK_FALSE(decode_envelope("ID", rec + "x").ok());
}

namespace {
std::string key_file(const std::string& dir, const std::string& name, char fill) {
  std::string path = dir + "/" + name;
  FILE* f = fopen(path.c_str(), "w");
  std::string hex(64, fill);
  fputs((hex + "\n").c_str(), f);
  fclose(f);
  return path;
}
std::string slurp(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  fclose(f);
  return out;
}
}  // namespace

TEST_CASE("sealer: round trip, tamper, wrong record, rotation") {
  TempDir dir;
  auto a = Sealer::load(key_file(dir.path, "a.key", 'a'), {});
  REQUIRE_MESSAGE(a.ok(), a.error().message);
  std::string sealed = a->seal("secret body", "body:ID1");
  CHECK(sealed.find("secret") == std::string::npos);
  CHECK(*a->open(sealed, "body:ID1") == "secret body");
  CHECK(a->seal("x", "k") != a->seal("x", "k"));  // fresh nonce each time
  std::string tampered = sealed;
  tampered[tampered.size() / 2] ^= 1;
  CHECK(a->open(tampered, "body:ID1").error().code == Errc::corrupt);
  CHECK(a->open(sealed, "body:ID2").error().code == Errc::corrupt);  // moved to another record
  // Rotation: b is current, a still opens what it sealed.
  auto b = Sealer::load(key_file(dir.path, "b.key", 'b'), {dir.path + "/a.key"});
  REQUIRE(b.ok());
  CHECK(*b->open(sealed, "body:ID1") == "secret body");
  auto b_only = Sealer::load(dir.path + "/b.key", {});
  CHECK(b_only->open(sealed, "body:ID1").error().code == Errc::corrupt);
  CHECK_FALSE(Sealer::load(key_file(dir.path, "bad.key", 'z'), {}).ok());
}

TEST_CASE("key files: 32 raw bytes or 64 hex digits, anything else an error naming the file") {
  const std::string hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
  struct Case {
    std::string contents;
    bool ok;
  } cases[] = {
      {hex, true},
      {hex + "\n", true},
      {"  " + hex + "\r\n", true},
      {std::string(32, '\0'), true},  // raw bytes, NULs included
      {hex.substr(1), false},
      {hex.substr(0, 63) + "g", false},
      {"", false},
      {std::string(33, 'x'), false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.contents);
    auto k = parse_key(c.contents, "k.key");
    CHECK(k.ok() == c.ok);
    if (!k.ok()) CHECK(k.error().message.rfind("key file k.key: ", 0) == 0);
  }
  auto k = parse_key(hex, "k.key");
  REQUIRE(k.ok());
  CHECK((*k)[0] == 0x00);
  CHECK((*k)[15] == 0xff);
  CHECK((*k)[31] == 0xff);
}

TEST_CASE("encrypted LMDB spool: contract holds, nothing readable on disk") {
  TempDir dir;
  auto sealer = Sealer::load(key_file(dir.path, "k.key", '7'), {});
  REQUIRE(sealer.ok());
  auto shared = std::make_shared<const Sealer>(std::move(*sealer));
  {
    TempDir sp;
    auto s = open_lmdb_spool({sp.path, 2 * 1024 * 1024, true, shared});
    REQUIRE(s.ok());
    contract(**s);
  }
  TempDir sp;
  auto s = open_lmdb_spool({sp.path, 8 << 20, true, shared});
  REQUIRE(s.ok());
  auto e = envelope("SEALED1", 1);
  e.rcpts[0].address = "private.person@example.org";
  WriteRequest r{InsertMessage{e, "MARKER-7f3a9 body", {LogEvent{1, "{\"rcpt\":\"private.person@example.org\"}", {}}}}, {}, {}};
  WriteRequest* p = &r;
  (*s)->apply({&p, 1});
  REQUIRE(r.result.ok());
  std::string disk = slurp(sp.path + "/data.mdb");
  CHECK(disk.find("MARKER-7f3a9") == std::string::npos);
  CHECK(disk.find("private.person") == std::string::npos);
  CHECK(*(*s)->get_body("SEALED1") == "MARKER-7f3a9 body");
  CHECK((*s)->get_envelope("SEALED1")->rcpts[0].address == "private.person@example.org");
  int logs = 0;
  REQUIRE((*s)->for_each_log(0, [&](const LogEvent& ev) { logs += ev.json.find("private.person") != std::string::npos; }).ok());
  CHECK(logs == 1);
  // The same spool opened without the key refuses to read, it does not guess.
  s->reset();
  auto plain = open_lmdb_spool({sp.path, 8 << 20, true, nullptr});
  REQUIRE(plain.ok());
  CHECK((*plain)->get_body("SEALED1").error().code == Errc::corrupt);
}

TEST_CASE("log purge removes only old events, in bounded batches") {
  auto s = make_mem_spool(1 << 20);
  std::vector<LogEvent> evs;
  for (int i = 0; i < 25; ++i) evs.push_back(LogEvent{int64_t(i), "{}", {}});
  WriteRequest add{AppendLog{evs}, {}, {}};
  WriteRequest* p = &add;
  s->apply({&p, 1});
  WriteRequest purge{PurgeLog{20, 8, 0}, {}, {}};
  p = &purge;
  s->apply({&p, 1});
  CHECK(std::get<PurgeLog>(purge.op).purged == 8);
  s->apply({&p, 1});
  s->apply({&p, 1});
  CHECK(std::get<PurgeLog>(purge.op).purged == 4);
  int left = 0;
  REQUIRE(s->for_each_log(0, [&](const LogEvent&) { ++left; }).ok());
  CHECK(left == 5);
}
