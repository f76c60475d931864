// See json_fields.h.
#include "util/json_fields.h"

#include <limits>

namespace ferry::json_field {

namespace {

// The field, or nullptr when obj is not an object or lacks it.
const nlohmann::json* find(const nlohmann::json& obj, const std::string& key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

Error wrong_type(const std::string& key, const char* want, const nlohmann::json& got) {
  return Error(Errc::invalid, "'" + key + "' must be " + want + ", not " + type_phrase(got));
}

}  // namespace

const char* type_phrase(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::boolean: return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "an integer";
    case nlohmann::json::value_t::number_float: return "a fractional number";
    case nlohmann::json::value_t::binary: return "binary data";
    case nlohmann::json::value_t::discarded: return "invalid JSON";
  }
  return "an unknown type";
}

Expected<std::string> get_string(const nlohmann::json& obj, const std::string& key, std::string fallback) {
  const auto* v = find(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_string()) return wrong_type(key, "a string", *v);
  return v->get_ref<const std::string&>();
}

Expected<int64_t> get_int(const nlohmann::json& obj, const std::string& key, int64_t fallback) {
  const auto* v = find(obj, key);
  if (v == nullptr) return fallback;
  if (v->is_number_unsigned()) {
    // get<int64_t>() would wrap a value above INT64_MAX into a negative one.
    auto u = v->get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<int64_t>::max())) return Error(Errc::invalid, "'" + key + "' is too large");
    return int64_t(u);
  }
  if (!v->is_number_integer()) return wrong_type(key, "an integer", *v);
  return v->get<int64_t>();
}

Expected<bool> get_bool(const nlohmann::json& obj, const std::string& key, bool fallback) {
  const auto* v = find(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) return wrong_type(key, "true or false", *v);
  return v->get<bool>();
}

std::string string_or(const nlohmann::json& obj, const std::string& key, std::string fallback) {
  const auto* v = find(obj, key);
  return v != nullptr && v->is_string() ? v->get_ref<const std::string&>() : fallback;
}

std::string text(const nlohmann::json& v) {
  if (v.is_string()) return v.get_ref<const std::string&>();
  if (v.is_discarded()) return "";
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ferry::json_field
