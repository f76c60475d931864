// libFuzzer: reading one delivery_log.file line during privacy erase
// (daemon/privacy_match.cc). The first byte splits the input into the
// address and the line. Invariants: it never throws, and a line that names
// no address in "from"/"rcpt" as a string is never dropped.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "privacy_match.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  size_t split = std::min<size_t>(data[0], size - 1);
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string_view address = rest.substr(0, split), line = rest.substr(split);
  bool drop = ferry::privacy::event_line_names(line, address);
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (drop && !j.is_object()) abort();
  if (drop != ferry::privacy::event_names(j, address)) abort();
  if (address.empty() && drop) abort();
  return 0;
}
