// lib/auth: hash schemes and the users file.
#include <doctest/doctest.h>

#include <crypt.h>
#include <unistd.h>

#include <fstream>

#include "auth/auth_users.h"

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
