// Message ids: 26 characters of Crockford base32 (the ULID layout): 48 bits
// of milliseconds then 80 random bits, incremented within one millisecond so
// that ids sort by creation time and never repeat in a process. Sortable ids
// make the spool's key order the arrival order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry {

class IdGenerator {
 public:
  IdGenerator();
  std::string next(int64_t unix_ms);

 private:
  int64_t last_ms_ = -1;
  uint8_t random_[10];
};

bool valid_message_id(std::string_view id);
// The creation time encoded in an id (its first 48 bits); 0 if malformed.
int64_t id_time_ms(std::string_view id);

}  // namespace ferry
