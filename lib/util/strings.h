// Small ASCII string helpers shared by the parsers. No locale: SMTP keywords
// are ASCII and must compare the same whatever the process locale is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }
inline char ascii_upper(char c) { return (c >= 'a' && c <= 'z') ? char(c - 'a' + 'A') : c; }

bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);
std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);
std::string_view trim(std::string_view s);
std::vector<std::string_view> split(std::string_view s, char sep);

// Whole-string unsigned decimal; no sign, no spaces, no overflow.
std::optional<uint64_t> parse_u64(std::string_view s);

// True when s is well-formed UTF-8 (no overlongs, no surrogates).
bool valid_utf8(std::string_view s);
bool is_ascii(std::string_view s);

// Makes untrusted text safe for a log line: control bytes become \xNN and
// the result is cut to max bytes.
std::string printable(std::string_view s, size_t max = 200);

}  // namespace ferry
