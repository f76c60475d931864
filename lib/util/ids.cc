// See ids.h.
#include "util/ids.h"

#include <sys/random.h>

#include <cstring>

#include "util/assert.h"

namespace ferry {
namespace {
constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void fill_random(uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t got = getrandom(p, n, 0);
    FERRY_ASSERT(got > 0);  // getrandom on Linux >= 3.17 does not fail for small n
    p += got;
    n -= size_t(got);
  }
}
}  // namespace

IdGenerator::IdGenerator() { fill_random(random_, sizeof random_); }

std::string IdGenerator::next(int64_t unix_ms) {
  if (unix_ms <= last_ms_) {
    // Same (or earlier: clock stepped back) millisecond: keep the old time and
    // bump the random part so that order and uniqueness both hold.
    unix_ms = last_ms_;
    for (int i = 9; i >= 0; --i)
      if (++random_[i] != 0) break;
  } else {
    fill_random(random_, sizeof random_);
    random_[0] &= 0x7F;  // leave headroom so increments never wrap
  }
  last_ms_ = unix_ms;

  uint8_t raw[16];
  uint64_t t = uint64_t(unix_ms);
  for (int i = 5; i >= 0; --i) {
    raw[i] = uint8_t(t & 0xFF);
    t >>= 8;
  }
  std::memcpy(raw + 6, random_, 10);

  // 128 bits → 26 base32 digits (the first digit carries 3 bits).
  std::string out(26, '0');
  unsigned __int128 v = 0;
  for (uint8_t b : raw) v = (v << 8) | b;
  for (int i = 25; i >= 0; --i) {
    out[size_t(i)] = kAlphabet[size_t(v & 31)];
    v >>= 5;
  }
  return out;
}

int64_t id_time_ms(std::string_view id) {
  if (!valid_message_id(id)) return 0;
  // 26 digits × 5 bits = 130 bits, of which the first 2 are padding: the
  // first 10 digits hold 50 bits = 2 padding + 48 bits of milliseconds.
  uint64_t v = 0;
  for (size_t i = 0; i < 10; ++i) v = (v << 5) | uint64_t(std::strchr(kAlphabet, id[i]) - kAlphabet);
  return int64_t(v & ((uint64_t(1) << 48) - 1));
}

bool valid_message_id(std::string_view id) {
  if (id.size() != 26) return false;
  for (char c : id)
    if (std::strchr(kAlphabet, c) == nullptr || c == '\0') return false;
  return true;
}

}  // namespace ferry
