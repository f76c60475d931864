// See privacy_match.h.
#include "privacy_match.h"

#include "util/json_fields.h"
#include "util/strings.h"

namespace ferry::privacy {

bool event_names(const nlohmann::json& event, std::string_view address) {
  // A missing field reads as "": an empty address would match it.
  if (address.empty()) return false;
  return iequals(json_field::string_or(event, "rcpt"), address) ||
         iequals(json_field::string_or(event, "from"), address);
}

bool event_line_names(std::string_view line, std::string_view address) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  return !j.is_discarded() && event_names(j, address);
}

}  // namespace ferry::privacy
