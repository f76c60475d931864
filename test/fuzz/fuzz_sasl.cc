// libFuzzer: SASL PLAIN/LOGIN exchanges and base64.
#include <cstddef>
#include <cstdint>
#include <string>

#include "smtp/smtp_sasl.h"
#include "util/base64.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  auto decoded = ferry::base64_decode(in);
  if (decoded && ferry::base64_encode(*decoded) != in) abort();  // canonical only
  for (const char* mech : {"PLAIN", "LOGIN"}) {
    auto [x, step] = ferry::smtp::SaslExchange::start(mech, in);
    for (int i = 0; i < 3 && step.kind == ferry::smtp::SaslExchange::Step::challenge; ++i)
      step = x.next(in);
  }
  return 0;
}
