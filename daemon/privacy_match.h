// Which delivery-log events name an address: the test privacy export and
// erase apply to stored events and to delivery_log.file lines. Pure (no
// I/O); the line form reads text from a file anyone with write access
// may have edited, so it accepts any bytes and never throws. Fuzzed
// (test/fuzz/fuzz_event_line.cc).
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace ferry::privacy {

// True when the event's "from" or "rcpt" is `address` (ASCII
// case-insensitive). Anything but an object, or those fields with another
// type than string, names no one; an empty address matches nothing.
bool event_names(const nlohmann::json& event, std::string_view address);

// The same for one line of delivery_log.file; a line that is not JSON
// names no one (and so is kept).
bool event_line_names(std::string_view line, std::string_view address);

}  // namespace ferry::privacy
