// Structured logging: one line per event on stderr, as `key=value` text or as
// a JSON object (logging.format). Knows nothing of mail. Thread-safe: each
// line is formatted first and written with a single write(2).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>

namespace ferry::log {

enum class Level { debug, info, warn, error };
enum class Format { text, json };

void configure(Format format, Level min_level);
// "2026-11-23T08:03:16.123Z": the time format of every log line and event.
std::string iso_timestamp(int64_t unix_ms);
bool enabled(Level level);

struct Field {
  std::string_view key;
  std::string value;
  bool quoted_json = true;  // numbers and booleans are bare in JSON

  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v ? v : "") {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false"), quoted_json(false) {}
  template <class N>
    requires std::is_arithmetic_v<N>
  Field(std::string_view k, N v) : key(k), value(fmt::to_string(v)), quoted_json(false) {}
};

// Formats one event line (exposed for tests).
std::string format_line(Format format, Level level, std::string_view event,
                        std::initializer_list<Field> fields, int64_t unix_ms);

void write(Level level, std::string_view event, std::initializer_list<Field> fields);

inline void debug(std::string_view e, std::initializer_list<Field> f = {}) {
  if (enabled(Level::debug)) write(Level::debug, e, f);
}
inline void info(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::info, e, f); }
inline void warn(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::warn, e, f); }
inline void error(std::string_view e, std::initializer_list<Field> f = {}) {
  write(Level::error, e, f);
}

}  // namespace ferry::log
