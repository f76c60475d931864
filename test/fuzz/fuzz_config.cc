// libFuzzer: the config loader (lib/config) on any YAML text. Invariants:
// no exception escapes load_string, and every error starts with
// "NAME:LINE:COL: " (the --check-config contract). Paths resolve under a
// directory that does not exist, so the file checks read nothing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <regex>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::regex located("^fuzz\\.yaml:[0-9]+:[0-9]+: ");
  std::string text(reinterpret_cast<const char*>(data), size);
  auto cfg = ferry::config::load_string(text, "fuzz.yaml", "/nonexistent-ferry-fuzz");
  if (!cfg && !std::regex_search(cfg.error().message, located)) abort();
  return 0;
}
