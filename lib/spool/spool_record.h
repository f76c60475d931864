// The versioned binary form of an envelope in the `msg` database, and the
// `sched` key layout. Version 1; a reader refuses versions it does not know
// rather than guessing, so an old ferryd never misreads a newer spool.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "smtp/smtp_envelope.h"
#include "util/expected.h"

namespace ferry::spool {

std::string encode_envelope(const smtp::Envelope& env);
Expected<smtp::Envelope> decode_envelope(std::string_view id, std::string_view data);

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
