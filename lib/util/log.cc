// Logging backend; see log.h. The format is chosen once at start and on
// reload; a relaxed atomic is enough because a line in the old format during
// a reload harms no one.
#include "util/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>

#include "util/json_escape.h"

namespace ferry::log {
namespace {

std::atomic<Format> g_format{Format::text};
std::atomic<Level> g_level{Level::info};

const char* level_name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "?";
}

}  // namespace

std::string iso_timestamp(int64_t unix_ms) {
  std::time_t secs = unix_ms / 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, int(unix_ms % 1000));
}

namespace {

// Text values are quoted when they hold a space, a quote or nothing at all,
// so that a line splits back into key=value pairs unambiguously.
void append_text_value(std::string& out, std::string_view v) {
  bool plain = !v.empty();
  for (unsigned char c : v)
    if (c <= ' ' || c == '"' || c == '=' || c == 0x7F) plain = false;
  if (plain) {
    out += v;
    return;
  }
  out += '"';
  for (unsigned char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += char(c);
    }
  }
  out += '"';
}

}  // namespace

void configure(Format format, Level min_level) {
  g_format.store(format, std::memory_order_relaxed);
  g_level.store(min_level, std::memory_order_relaxed);
}

bool enabled(Level level) { return level >= g_level.load(std::memory_order_relaxed); }

std::string format_line(Format format, Level level, std::string_view event,
                        std::initializer_list<Field> fields, int64_t unix_ms) {
  std::string out;
  out.reserve(128);
  if (format == Format::json) {
    out += "{\"ts\":\"" + iso_timestamp(unix_ms) + "\",\"level\":\"" + level_name(level) +
           "\",\"event\":";
    append_json_string(out, event);
    for (const auto& f : fields) {
      out += ',';
      append_json_string(out, f.key);
      out += ':';
      if (f.quoted_json)
        append_json_string(out, f.value);
      else
        out += f.value;
    }
    out += "}\n";
  } else {
    out += iso_timestamp(unix_ms);
    out += ' ';
    out += level_name(level);
    out += ' ';
    out += event;
    for (const auto& f : fields) {
      out += ' ';
      out += f.key;
      out += '=';
      append_text_value(out, f.value);
    }
    out += '\n';
  }
  return out;
}

void write(Level level, std::string_view event, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::string line = format_line(g_format.load(std::memory_order_relaxed), level, event, fields, now);
  // One write per line keeps lines whole when several threads log at once.
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= size_t(n);
  }
}

}  // namespace ferry::log
