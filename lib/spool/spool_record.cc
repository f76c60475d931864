// See spool_record.h.
#include "spool/spool_record.h"

#include <sys/random.h>
#include <unistd.h>

#include <zlib.h>

#include <atomic>

#include <nlohmann/json.hpp>

#include "spool/spool.h"
#include "util/bytes.h"
#include "util/strings.h"

namespace ferry::spool {
namespace {
// 1: fields only (read, never written any more); 2: fields + CRC-32.
constexpr uint8_t kVersion = 2;
constexpr std::string_view kBodyMagic{"\0FB\x01", 4};

void put_be32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += char((v >> shift) & 0xff);
}
uint32_t get_be32(std::string_view s) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = v << 8 | uint8_t(s[i]);
  return v;
}
}  // namespace

uint32_t crc32_of(std::string_view data) {
  return uint32_t(crc32_z(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(data.data()), data.size()));
}

std::string frame_body(std::string_view body) {
  std::string out;
  out.reserve(body.size() + kBodyFrameSize);
  out.append(kBodyMagic);
  put_be32(out, crc32_of(body));
  out.append(body);
  return out;
}

// Framed, possibly with a damaged magic: three of its four bytes match.
// Message text (an old raw body) matches at most two, 'F' and 'B': it has
// neither NUL nor 0x01. So no single flipped bit can pass a framed body off
// as an old raw one and get it sent unchecked.
bool is_framed_body(std::string_view stored) {
  if (stored.size() < kBodyMagic.size()) return !stored.empty() && stored[0] == '\0';
  int same = 0;
  for (size_t i = 0; i < kBodyMagic.size(); ++i) same += stored[i] == kBodyMagic[i];
  return same >= 3;
}

Expected<std::string> unframe_body(std::string_view id, std::string_view stored) {
  // Written before checksums: raw bytes (our Received: header first).
  if (!is_framed_body(stored)) return std::string(stored);
  if (!stored.starts_with(kBodyMagic))
    return Error(Errc::corrupt, "body of " + std::string(id) + " has a damaged header");
  if (stored.size() < kBodyFrameSize)
    return Error(Errc::corrupt, "body of " + std::string(id) + " is truncated");
  std::string_view body = stored.substr(kBodyFrameSize);
  if (crc32_of(body) != get_be32(stored.substr(kBodyMagic.size())))
    return Error(Errc::corrupt, "body of " + std::string(id) + " fails its checksum");
  return std::string(body);
}

std::string encode_envelope(const smtp::Envelope& e) {
  ByteWriter w;
  w.u8(kVersion);
  w.str(e.sender);
  w.u64(uint64_t(e.created_ms));
  w.u64(uint64_t(e.next_attempt_ms));
  w.varint(e.size);
  w.u8(uint8_t(e.body));
  w.u8(e.smtputf8 ? 1 : 0);
  w.u8(uint8_t(e.ret));
  w.str(e.envid);
  w.str(e.client_ip);
  w.str(e.helo);
  w.str(e.auth_user);
  w.str(e.listener);
  w.varint(e.rcpts.size());
  for (const auto& r : e.rcpts) {
    w.str(r.address);
    w.str(r.orcpt);
    w.u8(r.notify);
    w.u8(uint8_t(r.state));
    w.varint(r.attempts);
    w.varint(uint64_t(r.last_code));
    w.str(r.last_response);
  }
  std::string out = w.take();
  put_be32(out, crc32_of(out));
  return out;
}

Expected<smtp::Envelope> decode_envelope(std::string_view id, std::string_view data) {
  smtp::Envelope e;
  e.id = std::string(id);
  auto corrupt = [&] { return Error(Errc::corrupt, "envelope record " + e.id + " is corrupt"); };
  if (data.empty()) return corrupt();
  uint8_t version = uint8_t(data[0]);
  if (version != 1 && version != kVersion)
    return Error(Errc::corrupt, "envelope record " + e.id + " has unknown version " + std::to_string(version));
  if (version >= 2) {
    if (data.size() < 5) return corrupt();
    std::string_view fields = data.substr(0, data.size() - 4);
    if (crc32_of(fields) != get_be32(data.substr(data.size() - 4)))
      return Error(Errc::corrupt, "envelope record " + e.id + " fails its checksum");
    data = fields;
  }
  ByteReader r(data);
  uint8_t body = 0, utf8 = 0, ret = 0;
  uint64_t created = 0, next = 0, n = 0;
  if (!r.u8(version)) return corrupt();
  if (!(r.str(e.sender) && r.u64(created) && r.u64(next) && r.varint(e.size) && r.u8(body) &&
        r.u8(utf8) && r.u8(ret) && r.str(e.envid) && r.str(e.client_ip) && r.str(e.helo) &&
        r.str(e.auth_user) && r.str(e.listener) && r.varint(n)))
    return corrupt();
  if (body > 3 || ret > 2 || n > data.size()) return corrupt();
  e.created_ms = int64_t(created);
  e.next_attempt_ms = int64_t(next);
  e.body = smtp::BodyType(body);
  e.smtputf8 = utf8 != 0;
  e.ret = smtp::DsnRet(ret);
  e.rcpts.resize(n);
  for (auto& rc : e.rcpts) {
    uint8_t state = 0;
    uint64_t attempts = 0, code = 0;
    if (!(r.str(rc.address) && r.str(rc.orcpt) && r.u8(rc.notify) && r.u8(state) &&
          r.varint(attempts) && r.varint(code) && r.str(rc.last_response)))
      return corrupt();
    if (state > 3) return corrupt();
    rc.state = smtp::RcptState(state);
    rc.attempts = uint32_t(attempts);
    rc.last_code = int(code);
  }
  if (!r.done()) return corrupt();
  return e;
}

std::string sched_key(int64_t next_attempt_ms, std::string_view id) {
  return be64(uint64_t(next_attempt_ms)) + std::string(id);
}

std::string_view sched_key_id(std::string_view key) { return key.size() > 8 ? key.substr(8) : ""; }

std::string log_key(int64_t ts_ms) {
  // The sequence starts at a random point per process so that two runs in
  // the same millisecond never collide; it only needs to be unique.
  static std::atomic<uint64_t> seq{[] {
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r) r = uint64_t(::getpid()) << 32;
    return r;
  }()};
  return be64(uint64_t(ts_ms)) + be64(seq.fetch_add(1, std::memory_order_relaxed));
}

std::vector<std::string> event_addresses(std::string_view json) {
  std::vector<std::string> out;
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (!j.is_object()) return out;
  for (const char* field : {"from", "rcpt"}) {
    auto it = j.find(field);
    if (it == j.end() || !it->is_string()) continue;
    std::string a = to_lower(it->get<std::string>());
    if (!a.empty() && (out.empty() || out.front() != a)) out.push_back(std::move(a));
  }
  return out;
}

bool all_final(const smtp::Envelope& e) {
  for (const auto& r : e.rcpts)
    if (r.state == smtp::RcptState::pending) return false;
  return true;
}

}  // namespace ferry::spool
