// Base64 (RFC 4648, standard alphabet, padded) for SASL exchanges. Decoding
// is strict: a wrong length, a stray character or bad padding is an error,
// because AUTH data that decodes "somehow" is how credential confusion starts.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ferry {

std::string base64_encode(std::string_view in);
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace ferry
