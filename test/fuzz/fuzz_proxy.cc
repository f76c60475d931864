// libFuzzer: PROXY protocol v2 header parser.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "net/net_proxy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto h = ferry::net::parse_proxy_v2(in);
  if (h.consumed > in.size()) abort();
  return 0;
}
