// The users file (auth.users_file): a YAML mapping "name: HASH". Hashes are
// argon2id (preferred; what ferryctl passwd writes) or crypt(3) yescrypt,
// bcrypt, sha512-crypt and sha256-crypt. Weaker schemes (DES, MD5) are
// refused at load time rather than silently accepted.
//
// verify() is deliberately slow (that is the point of these hashes) and
// blocking: callers run it on the libuv thread pool, never on the loop.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "util/expected.h"

namespace ferry::auth {

class UserDb {
 public:
  // Errors read "FILE:LINE:COL: message". A directory, a FIFO, an
  // unreadable or oversized file is an error too, never an exception.
  static Expected<std::shared_ptr<const UserDb>> load(const std::string& path);
  // The file's text, already read; `name` is the FILE of errors. No I/O
  // (fuzzed: test/fuzz/fuzz_users.cc).
  static Expected<std::shared_ptr<const UserDb>> parse(const std::string& text, const std::string& name);
  static std::shared_ptr<const UserDb> from_map(std::unordered_map<std::string, std::string> m);

  // True when user exists and password matches. An unknown user costs one
  // hash verification too, so timing does not tell which names exist.
  bool verify(std::string_view user, std::string_view password) const;
  size_t size() const { return hashes_.size(); }

 private:
  std::unordered_map<std::string, std::string> hashes_;
  // Hash verified for unknown users. Made on first use, on the thread pool
  // that runs verify(): hashing at load time would block the event loop
  // during every reload.
  mutable std::once_flag dummy_once_;
  mutable std::string dummy_;
};

// A new argon2id hash (OWASP parameters: m=19 MiB, t=2, p=1) with a random salt.
Expected<std::string> hash_password(std::string_view password);
// Checks one password against one stored hash of any supported scheme.
bool verify_hash(const std::string& hash, std::string_view password);
// Whether a hash string names a supported scheme.
bool supported_hash(std::string_view hash);

}  // namespace ferry::auth
