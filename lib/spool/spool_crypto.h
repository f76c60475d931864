// Encryption at rest for spool records (spool.encryption_key_file):
// AES-256-GCM through OpenSSL EVP, a fresh random 96-bit nonce per record,
// the record's identity (database name and key) as associated data, so a
// sealed value moved to another record fails to open. Each sealed value
// carries a key id, so old keys (spool.previous_key_files) still open
// what they sealed while new writes use the current key.
//
// Layout: "FE" 0x01 | key id (4) | nonce (12) | ciphertext | tag (16).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/expected.h"

namespace ferry::spool {

// HMAC-SHA256(key, data), first 16 bytes as 32 hex digits.
std::string hmac_hex(const uint8_t* key, size_t key_len, std::string_view data);

// The contents of a key file: 32 raw bytes, or 64 hex digits with
// surrounding white space. Pure, so it can be fuzzed; `name` goes in errors.
Expected<std::array<uint8_t, 32>> parse_key(std::string_view contents, std::string_view name);

class Sealer {
 public:
  // Key files hold 32 raw bytes or 64 hex digits (a trailing newline is fine).
  static Expected<Sealer> load(const std::string& current, const std::vector<std::string>& previous);

  std::string seal(std::string_view plaintext, std::string_view aad) const;
  // Errc::corrupt when the value was tampered with, is not sealed, or was
  // sealed with a key we do not have.
  Expected<std::string> open(std::string_view sealed, std::string_view aad) const;
  // HMAC-SHA256 under a key derived from the current key: stable names
  // for addresses (index keys, audit lines) that reveal nothing.
  std::string keyed_hash(std::string_view data) const;
  static bool is_sealed(std::string_view v) { return v.size() >= 3 && v[0] == 'F' && v[1] == 'E' && v[2] == 1; }

 private:
  struct Key {
    std::array<uint8_t, 32> bytes{};
    std::array<uint8_t, 4> id{};
  };
  std::vector<Key> keys_;  // [0] is current
};

}  // namespace ferry::spool
