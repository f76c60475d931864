// JSON string escaping for log lines, where pulling in a full JSON library
// per line would cost more than it buys. Invalid UTF-8 bytes are escaped as
// \u00XX so the output is always valid JSON.
#pragma once

#include <string>
#include <string_view>

namespace ferry {

void append_json_string(std::string& out, std::string_view s);

}  // namespace ferry
