// libFuzzer: the users file parser (lib/auth/auth_users.cc) on any bytes.
// Invariants: yaml-cpp's exceptions never escape and errors carry
// "NAME:LINE:COL: ".
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "auth/auth_users.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto db = ferry::auth::UserDb::parse(text, "users.yaml");
  if (!db && db.error().message.rfind("users.yaml:", 0) != 0) abort();
  return 0;
}
