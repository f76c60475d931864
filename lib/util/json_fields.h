// Typed reads of JSON fields that someone else wrote: control requests,
// the daemon's replies (ferryctl), event-file lines, records read back
// from the spool. nlohmann's value()/get() throw type_error on a wrong
// type, and an exception out of a libuv callback aborts ferryd; these
// never throw. A missing field gives the fallback, a present one of the
// wrong type an error naming it (so a request can be answered with it).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "util/expected.h"

namespace ferry::json_field {

// `obj` need not be an object: anything else has no fields.
Expected<std::string> get_string(const nlohmann::json& obj, const std::string& key, std::string fallback = "");
Expected<int64_t> get_int(const nlohmann::json& obj, const std::string& key, int64_t fallback = 0);
Expected<bool> get_bool(const nlohmann::json& obj, const std::string& key, bool fallback = false);

// For data ferry only shows or matches (event lines, replies): a missing
// or wrong-typed field reads as the fallback.
std::string string_or(const nlohmann::json& obj, const std::string& key, std::string fallback = "");
// Shows any value as text: a string as is, anything else as compact JSON
// (invalid UTF-8 replaced, so this cannot throw either).
std::string text(const nlohmann::json& v);

// The type's name as an error message uses it: "a string", "an integer".
const char* type_phrase(const nlohmann::json& v);

}  // namespace ferry::json_field
