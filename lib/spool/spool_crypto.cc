// See spool_crypto.h.
#include "spool/spool_crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "util/strings.h"

namespace ferry::spool {
namespace {

constexpr size_t kHeader = 3 + 4 + 12;
constexpr size_t kTag = 16;

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

// Key material is wiped from the read buffer on every path, errors included.
Expected<std::array<uint8_t, 32>> read_key(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(Errc::not_found, fmt::format("cannot read key file {}", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string raw = ss.str();
  auto key = parse_key(raw, path);
  OPENSSL_cleanse(raw.data(), raw.size());
  return key;
}

}  // namespace

Expected<std::array<uint8_t, 32>> parse_key(std::string_view raw, std::string_view name) {
  std::array<uint8_t, 32> key{};
  if (raw.size() == 32) {
    std::memcpy(key.data(), raw.data(), 32);
    return key;
  }
  std::string_view t = trim(raw);
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.remove_suffix(1);
  if (t.size() != 64)
    return Error(Errc::invalid,
                 fmt::format("key file {}: needs 32 bytes or 64 hex digits (e.g. openssl rand -hex 32)", name));
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    int hi = hex(t[2 * i]), lo = hex(t[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      OPENSSL_cleanse(key.data(), key.size());
      return Error(Errc::invalid, fmt::format("key file {}: not hex", name));
    }
    key[i] = uint8_t(hi * 16 + lo);
  }
  return key;
}

Expected<Sealer> Sealer::load(const std::string& current, const std::vector<std::string>& previous) {
  Sealer s;
  std::vector<std::string> files{current};
  files.insert(files.end(), previous.begin(), previous.end());
  for (const auto& f : files) {
    auto k = read_key(f);
    if (!k) return k.error();
    Key key;
    key.bytes = *k;
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(key.bytes.data(), key.bytes.size(), digest);
    std::memcpy(key.id.data(), digest, 4);
    s.keys_.push_back(key);
  }
  return s;
}

std::string Sealer::seal(std::string_view plaintext, std::string_view aad) const {
  const Key& k = keys_.front();
  std::string out(kHeader + plaintext.size() + kTag, '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  p[0] = 'F';
  p[1] = 'E';
  p[2] = 1;
  std::memcpy(p + 3, k.id.data(), 4);
  unsigned char* nonce = p + 7;
  RAND_bytes(nonce, 12);  // 96 random bits per record: no nonce reuse in any realistic volume
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, k.bytes.data(), nonce);
  EVP_EncryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()), int(aad.size()));
  EVP_EncryptUpdate(ctx.get(), p + kHeader, &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
                    int(plaintext.size()));
  EVP_EncryptFinal_ex(ctx.get(), p + kHeader + len, &len);
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, int(kTag), p + kHeader + plaintext.size());
  return out;
}

std::string hmac_hex(const uint8_t* key, size_t key_len, std::string_view data) {
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key, int(key_len), reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < 16; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 15];
  }
  return out;
}

std::string Sealer::keyed_hash(std::string_view data) const {
  // A separate key for hashing, so the cipher key is never used twice.
  unsigned char derived[32];
  std::string label = "ferry keyed hash";
  unsigned int len = 0;
  HMAC(EVP_sha256(), keys_.front().bytes.data(), 32, reinterpret_cast<const unsigned char*>(label.data()),
       label.size(), derived, &len);
  return hmac_hex(derived, sizeof derived, data);
}

Expected<std::string> Sealer::open(std::string_view sealed, std::string_view aad) const {
  if (!is_sealed(sealed) || sealed.size() < kHeader + kTag)
    return Error(Errc::corrupt, "record is not sealed (written without encryption?)");
  const auto* p = reinterpret_cast<const unsigned char*>(sealed.data());
  const Key* key = nullptr;
  for (const auto& k : keys_)
    if (std::memcmp(k.id.data(), p + 3, 4) == 0) key = &k;
  if (!key) return Error(Errc::corrupt, "record sealed with a key that is not configured");
  size_t n = sealed.size() - kHeader - kTag;
  std::string out(n, '\0');
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key->bytes.data(), p + 7);
  EVP_DecryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()), int(aad.size()));
  EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, p + kHeader, int(n));
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, int(kTag), const_cast<unsigned char*>(p + kHeader + n));
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &len) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    return Error(Errc::corrupt, "record failed authentication (tampered, or wrong key)");
  }
  return out;
}

}  // namespace ferry::spool
