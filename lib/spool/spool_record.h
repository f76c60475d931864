// The versioned binary form of an envelope in the `msg` database, the
// checksummed frame of an unencrypted body, and the `sched` key layout.
// Envelope version 2 ends in a CRC-32 of the record; version 1 (no
// checksum) is still read. A reader refuses versions it does not know
// rather than guessing, so an old ferryd never misreads a newer spool.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/smtp_envelope.h"
#include "util/expected.h"

namespace ferry::spool {

std::string encode_envelope(const smtp::Envelope& env);
// Errc::corrupt for a record that is truncated, fails its checksum or has
// a version this reader does not know.
Expected<smtp::Envelope> decode_envelope(std::string_view id, std::string_view data);

// CRC-32 (zlib's; the same polynomial as gzip and PNG).
uint32_t crc32_of(std::string_view data);

// An unencrypted body at rest: "\0FB\x01" | CRC-32 of the body (4 bytes,
// big-endian) | the body. Bodies written before checksums are raw bytes;
// they begin with our Received: header, and message content has no NUL, so
// a leading NUL tells the two apart. Sealed bodies carry the AEAD tag
// instead and are not framed.
constexpr size_t kBodyFrameSize = 8;
std::string frame_body(std::string_view body);
bool is_framed_body(std::string_view stored);
// The body, or Errc::corrupt when the checksum or the frame is wrong.
Expected<std::string> unframe_body(std::string_view id, std::string_view stored);

// (next_attempt_ms big-endian, id): byte order is schedule order.
std::string sched_key(int64_t next_attempt_ms, std::string_view id);
std::string_view sched_key_id(std::string_view key);

// (time big-endian, unique sequence): log keys sort by time.
std::string log_key(int64_t ts_ms);

// The addresses a delivery-log event names, lower-cased: its "from"
// (unless the null sender) and its "rcpt". What the address index holds;
// derived from the stored JSON both when indexing and when deleting, so
// the two can never disagree.
std::vector<std::string> event_addresses(std::string_view json);

}  // namespace ferry::spool
