// A tiny binary codec for spool records: little-endian fixed integers,
// LEB128 varints and length-prefixed strings. The reader checks every bound
// and reports truncation or garbage instead of reading past the end, because
// records come from disk and disks lie.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry {

class ByteWriter {
 public:
  void u8(uint8_t v) { out_ += char(v); }
  void u64(uint64_t v);
  void varint(uint64_t v);
  void str(std::string_view s);
  std::string take() { return std::move(out_); }
  const std::string& data() const { return out_; }

 private:
  std::string out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  bool u8(uint8_t& v);
  bool u64(uint64_t& v);
  bool varint(uint64_t& v);
  bool str(std::string& s);
  bool done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

// Big-endian, so that byte order equals numeric order in LMDB keys.
std::string be64(uint64_t v);
uint64_t from_be64(std::string_view s);

}  // namespace ferry
