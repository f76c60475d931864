// libFuzzer: the encryption key file parser (lib/spool/spool_crypto.cc
// parse_key) on any bytes. Invariants: it returns, never throws, and an
// error names the file.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "spool/spool_crypto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto key = ferry::spool::parse_key(text, "key.bin");
  if (!key && key.error().message.rfind("key file key.bin: ", 0) != 0) abort();
  return 0;
}
