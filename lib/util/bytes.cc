// See bytes.h.
#include "util/bytes.h"

namespace ferry {

void ByteWriter::u64(uint64_t v) {
  for (int i = 0; i < 8; ++i) out_ += char((v >> (8 * i)) & 0xFF);
}

void ByteWriter::varint(uint64_t v) {
  while (v >= 0x80) {
    out_ += char((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out_ += char(v);
}

void ByteWriter::str(std::string_view s) {
  varint(s.size());
  out_ += s;
}

bool ByteReader::u8(uint8_t& v) {
  if (pos_ >= in_.size()) return false;
  v = uint8_t(in_[pos_++]);
  return true;
}

bool ByteReader::u64(uint64_t& v) {
  if (in_.size() - pos_ < 8) return false;
  v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(uint8_t(in_[pos_ + size_t(i)])) << (8 * i);
  pos_ += 8;
  return true;
}

bool ByteReader::varint(uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    uint8_t b;
    if (!u8(b)) return false;
    v |= uint64_t(b & 0x7F) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;  // more than 10 bytes: not a varint we wrote
}

bool ByteReader::str(std::string& s) {
  uint64_t n;
  if (!varint(n) || n > in_.size() - pos_) return false;
  s.assign(in_.substr(pos_, n));
  pos_ += n;
  return true;
}

std::string be64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i) {
    s[size_t(i)] = char(v & 0xFF);
    v >>= 8;
  }
  return s;
}

uint64_t from_be64(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | uint8_t(s[i]);
  return v;
}

}  // namespace ferry
