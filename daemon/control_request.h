// The control protocol's input side, pure (no libuv, no spool): one
// request line → a checked request, or the error message to answer with.
// It runs before any command handler, so handlers only ever see a JSON
// object whose "cmd" is a known command and whose "args" is an object
// holding only that command's arguments, each of its declared type.
// Fuzzed (test/fuzz/fuzz_control.cc).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "util/expected.h"

namespace ferry::control {

// A request line longer than this is refused unread: every real request
// (one address, one id) is a few hundred bytes.
constexpr size_t kMaxRequest = 64 * 1024;

struct Request {
  std::string cmd;
  nlohmann::json args = nlohmann::json::object();  // checked against the command's table row
  // {"cmd": cmd, "args": args}: what the handlers take.
  nlohmann::json to_json() const { return {{"cmd", cmd}, {"args", args}}; }
};

// `line` is the request without its newline.
Expected<Request> parse_request(std::string_view line);

// {"ok": false, "error": message}
nlohmann::json error_reply(std::string message);

}  // namespace ferry::control
