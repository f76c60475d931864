// Password hashing and verification: libargon2 for argon2 (the reference
// implementation, in Debian), libxcrypt's crypt_r for the crypt(3) family,
// so that hashes made by mkpasswd/htpasswd/doveadm work unchanged.
#include <argon2.h>
#include <crypt.h>
#include <sys/random.h>

#include <cstring>
#include <memory>

#include "auth/auth_users.h"

namespace ferry::auth {
namespace {

constexpr uint32_t kTimeCost = 2;
constexpr uint32_t kMemoryKiB = 19 * 1024;
constexpr uint32_t kParallelism = 1;

bool starts(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Constant-time comparison: a mismatch position must not show in timing.
bool equal_ct(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

// The shape every supported scheme shares: "$id$" then '$'-separated
// fields of the crypt/PHC alphabet, the last (the hash itself) not empty.
// A prefix check alone let "$6$" or "$argon2id$ x" load and then fail
// every login; this refuses them at load, where the error names the line.
// (No trial verification: at bcrypt cost 12 that is 250 ms a user on the
// loop during a reload.)
bool well_formed(std::string_view h, size_t min_fields) {
  size_t fields = 0;
  for (size_t i = 0; i < h.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(h[i]);
    if (c == '$') {
      ++fields;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '/' ||
              c == '+' || c == '=' || c == ',' || c == '-';
    if (!ok) return false;
  }
  return fields >= min_fields && h.back() != '$';
}

bool supported_hash(std::string_view h) {
  if (starts(h, "$argon2id$") || starts(h, "$argon2i$")) {  // $argon2id$[v=19$]m=,t=,p=$salt$hash
    size_t id_end = h.find('$', 1) + 1;
    return well_formed(h, starts(h.substr(id_end), "v=") ? 5 : 4);
  }
  if (starts(h, "$2b$") || starts(h, "$2a$") || starts(h, "$2y$")) return well_formed(h, 3);  // $2b$10$salthash
  if (starts(h, "$y$") || starts(h, "$6$") || starts(h, "$5$")) return well_formed(h, 3);  // $6$[rounds=N$]salt$hash
  return false;
}

Expected<std::string> hash_password(std::string_view password) {
  unsigned char salt[16];
  if (getrandom(salt, sizeof salt, 0) != sizeof salt) return Error("getrandom failed");
  size_t len = argon2_encodedlen(kTimeCost, kMemoryKiB, kParallelism, sizeof salt, 32, Argon2_id);
  std::string out(len, '\0');
  int rc = argon2id_hash_encoded(kTimeCost, kMemoryKiB, kParallelism, password.data(),
                                 password.size(), salt, sizeof salt, 32, out.data(), out.size());
  if (rc != ARGON2_OK) return Error(argon2_error_message(rc));
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool verify_hash(const std::string& hash, std::string_view password) {
  if (starts(hash, "$argon2id$"))
    return argon2id_verify(hash.c_str(), password.data(), password.size()) == ARGON2_OK;
  if (starts(hash, "$argon2i$"))
    return argon2i_verify(hash.c_str(), password.data(), password.size()) == ARGON2_OK;
  if (!supported_hash(hash)) return false;
  // crypt_r needs a NUL-terminated phrase; a password with a NUL cannot match.
  if (password.find('\0') != std::string_view::npos) return false;
  auto data = std::make_unique<crypt_data>();  // ~32 KiB: not on the stack
  std::string phrase(password);
  const char* out = crypt_r(phrase.c_str(), hash.c_str(), data.get());
  if (out == nullptr || out[0] == '*') return false;
  return equal_ct(out, hash);
}

}  // namespace ferry::auth
