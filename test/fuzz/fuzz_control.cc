// libFuzzer: the control protocol's request check (daemon/control_request.cc).
// Invariants: it never throws; an accepted request names a command and
// carries an object of arguments, and survives a dump/parse round trip
// with the same verdict (so what a handler gets is what was checked).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "control_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = ferry::control::parse_request(in);
  if (!r) {
    if (r.error().message.empty()) abort();
    return 0;
  }
  if (r->cmd.empty() || !r->args.is_object()) abort();
  auto again = ferry::control::parse_request(r->to_json().dump());
  if (!again || again->cmd != r->cmd || again->args != r->args) abort();
  return 0;
}
