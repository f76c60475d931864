// lib/auth: hash schemes and the users file.
#include <doctest/doctest.h>

#include <crypt.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "auth/auth_users.h"
#include "temp_dir.h"

using namespace ferry::auth;

TEST_CASE("argon2id hashes verify and reject") {
  auto h = hash_password("correct horse");
  REQUIRE(h.ok());
  CHECK(h->rfind("$argon2id$v=19$m=19456,t=2,p=1$", 0) == 0);
  CHECK(verify_hash(*h, "correct horse"));
  CHECK_FALSE(verify_hash(*h, "correct horsE"));
  CHECK_FALSE(verify_hash(*h, ""));
  CHECK(*hash_password("x") != *hash_password("x"));  // salted
}

TEST_CASE("crypt(3) schemes made by other tools verify") {
  for (const char* prefix : {"$y$", "$2b$", "$6$", "$5$"}) {
    CAPTURE(prefix);
    char* salt = crypt_gensalt(prefix, 0, nullptr, 0);
    REQUIRE(salt != nullptr);
    std::string hash = crypt("s3cret", salt);
    CHECK(supported_hash(hash));
    CHECK(verify_hash(hash, "s3cret"));
    CHECK_FALSE(verify_hash(hash, "s3cre"));
    CHECK_FALSE(verify_hash(hash, std::string("s3cret\0x", 8)));
  }
  CHECK_FALSE(supported_hash("$1$abc$def"));      // MD5-crypt: refused
  CHECK_FALSE(supported_hash("abJnggxhB/yWI"));   // DES: refused
  CHECK_FALSE(verify_hash("$1$abc$def", "x"));
}

TEST_CASE("users file: load, verify, errors with positions") {
  char tmpl[] = "/tmp/ferry-users-XXXXXX";
  int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0);
  close(fd);
  std::string path = tmpl;
  auto write = [&](const std::string& text) { std::ofstream(path) << text; };

  write("alice: " + *hash_password("pw-a") + "\nbob: " + std::string(crypt("pw-b", crypt_gensalt("$6$", 0, nullptr, 0))) + "\n");
  auto db = UserDb::load(path);
  REQUIRE_MESSAGE(db.ok(), db.error().message);
  CHECK((*db)->size() == 2);
  CHECK((*db)->verify("alice", "pw-a"));
  CHECK((*db)->verify("bob", "pw-b"));
  CHECK_FALSE((*db)->verify("alice", "pw-b"));
  CHECK_FALSE((*db)->verify("carol", "pw-a"));

  write("alice: plaintext\n");
  auto bad = UserDb::load(path);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.rfind(path + ":1:8: unsupported or weak hash", 0) == 0);

  write("alice: [\n");
  CHECK(UserDb::load(path).error().message.rfind(path + ":", 0) == 0);
  unlink(tmpl);
  CHECK(UserDb::load(path).error().code == ferry::Errc::not_found);
}

TEST_CASE("users file: a directory, a FIFO, garbage and malformed hashes are errors, never exceptions") {
  ferry::test::TempDir tmp;  // removed even when a REQUIRE fails
  const std::string& d = tmp.path;
  // YAML::LoadFile on a directory threw std::ios_base::failure (read(2)
  // fails with EISDIR under yaml-cpp's stream): ferryd aborted at start
  // and on SIGHUP.
  auto r = UserDb::load(d);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == d + ":1:1: cannot read users file: it is a directory");

  std::string fifo = d + "/fifo";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  r = UserDb::load(fifo);  // must not wait for a writer
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == fifo + ":1:1: cannot read users file: not a regular file");

  std::string path = d + "/users.yaml";
  auto load = [&](const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    return UserDb::load(path);
  };
  struct Case {
    std::string text;
    std::string expect;  // after "PATH:"
  } cases[] = {
      {"alice: $6$\n", "1:8: unsupported or weak hash for 'alice'"},
      {"alice: \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$ aGFzaA\"\n", "1:8: unsupported or weak hash"},
      {"alice: \"$2b$\"\n", "1:8: unsupported or weak hash"},
      {"alice:\n  - x\n", "1:1: expected \"name: HASH\""},
      {"- alice\n", "1:1: expected \"name: HASH\" lines"},
      {std::string("\xff\xfe\x00garbage\x01: [", 13), "1:"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto bad = load(c.text);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message.rfind(path + ":" + c.expect, 0) == 0);
    if (bad.error().message.rfind(path + ":" + c.expect, 0) != 0) MESSAGE(bad.error().message);
  }
  auto empty = load("");  // no users: valid, nobody can log in
  REQUIRE(empty.ok());
  CHECK((*empty)->size() == 0);
}

TEST_CASE("hash shapes: well-formed hashes of every scheme pass, truncated ones do not") {
  CHECK(supported_hash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"));
  CHECK(supported_hash("$argon2i$m=4096,t=3,p=1$c2FsdA$aGFzaA"));  // no v= (argon2 1.0)
  CHECK(supported_hash("$6$rounds=5000$salt$hash"));
  CHECK(supported_hash("$y$j9T$salt$hash"));
  CHECK(supported_hash("$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"));
  for (const char* bad : {"$6$", "$6$salt$", "$y$j9T", "$argon2id$", "$argon2id$v=19$m=1,t=1,p=1$salt",
                          "$6$salt$hash\n", "$6$sa lt$hash", "$2b$10"})
    CHECK_MESSAGE(!supported_hash(bad), bad);
}

#include "auth/auth_ratelimit.h"

TEST_CASE("token buckets: burst, refill, per key, bounded") {
  RateLimiter r(3, 1000);  // 3 per second
  for (int i = 0; i < 3; ++i) CHECK(r.take("u", 1, 0));
  CHECK_FALSE(r.take("u", 1, 0));
  CHECK(r.wait_ms("u", 1, 0) > 300);
  CHECK(r.take("other", 1, 0));  // keys are independent
  CHECK_FALSE(r.take("u", 1, 300));
  CHECK(r.take("u", 1, 340));  // one token back after 1/3 s
  CHECK_FALSE(r.take("u", 5, 100000));  // never more than the capacity at once
  r.prune(100000);
  CHECK(r.size() == 0);
  RateLimiter off(0, 1000);
  for (int i = 0; i < 1000; ++i) CHECK(off.take("x", 1, 0));
  RateLimiter capped(1, 1000, 10);
  for (int i = 0; i < 100; ++i) capped.take("k" + std::to_string(i), 1, 0);
  CHECK(capped.size() <= 10);
}

TEST_CASE("AUTH lockout: N failures in the window lock the address for a while") {
  AuthLockout l(3, 60'000, 10'000);
  l.failure("192.0.2.1", 0);
  l.failure("192.0.2.1", 1000);
  CHECK(l.locked_ms("192.0.2.1", 1000) == 0);
  l.failure("192.0.2.1", 2000);
  CHECK(l.locked_ms("192.0.2.1", 2000) == 10'000);
  CHECK(l.locked_ms("192.0.2.2", 2000) == 0);
  CHECK(l.locked_ms("192.0.2.1", 12'001) == 0);
  l.failure("192.0.2.3", 0);
  l.failure("192.0.2.3", 70'000);  // outside the window: starts again
  l.failure("192.0.2.3", 70'001);
  CHECK(l.locked_ms("192.0.2.3", 70'001) == 0);
}
