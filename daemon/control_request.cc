// See control_request.h. The table below is the one list of control
// commands and their arguments; a command handled in control_commands.cc
// or privacy.cc needs its row here, or requests for it are refused as
// unknown. Strict on purpose: a misspelt argument ("adress") silently
// ignored would make "privacy erase" erase nothing and report success.
#include "control_request.h"

#include <initializer_list>

#include "util/json_fields.h"
#include "util/strings.h"

namespace ferry::control {

namespace {

enum class Type { string, integer, boolean };

struct Arg {
  const char* name;
  Type type;
  bool required;
};

struct Command {
  const char* name;
  std::initializer_list<Arg> args;
};

const Command kCommands[] = {
    {"status", {}},
    {"reload", {}},
    {"queue.summary", {}},
    {"queue.list", {}},
    {"queue.show", {{"id", Type::string, true}}},
    {"queue.flush", {{"id", Type::string, false}, {"domain", Type::string, false}}},
    {"queue.delete", {{"id", Type::string, true}}},
    {"queue.bounce", {{"id", Type::string, true}}},
    {"log.search", {{"address", Type::string, true}, {"since_ms", Type::integer, false}}},
    {"privacy.export", {{"address", Type::string, true}}},
    {"privacy.erase", {{"address", Type::string, true}, {"keep_suppression", Type::boolean, false}}},
    {"suppress.add", {{"address", Type::string, true}, {"reason", Type::string, false}}},
    {"suppress.remove", {{"address", Type::string, true}}},
    {"suppress.list", {}},
};

const Command* find_command(const std::string& name) {
  for (const auto& c : kCommands)
    if (name == c.name) return &c;
  return nullptr;
}

Expected<void> check_type(const nlohmann::json& args, const Arg& a) {
  switch (a.type) {
    case Type::string:
      if (auto v = json_field::get_string(args, a.name); !v) return v.error();
      break;
    case Type::integer:
      if (auto v = json_field::get_int(args, a.name); !v) return v.error();
      break;
    case Type::boolean:
      if (auto v = json_field::get_bool(args, a.name); !v) return v.error();
      break;
  }
  return {};
}

Error invalid(std::string message) { return Error(Errc::invalid, std::move(message)); }

}  // namespace

Expected<Request> parse_request(std::string_view line) {
  if (line.size() > kMaxRequest) return invalid("request too large");
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded()) return invalid("request is not valid JSON");
  if (!j.is_object()) return invalid("request must be a JSON object, not " + std::string(json_field::type_phrase(j)));
  auto cmd_field = j.find("cmd");
  if (cmd_field == j.end()) return invalid("request needs \"cmd\"");
  auto cmd = json_field::get_string(j, "cmd");
  if (!cmd) return invalid(cmd.error().message);
  const Command* c = find_command(*cmd);
  if (c == nullptr) return invalid("unknown command: " + printable(*cmd, 40));

  Request r;
  r.cmd = *cmd;
  if (auto a = j.find("args"); a != j.end()) {
    if (!a->is_object()) return invalid("'args' must be an object, not " + std::string(json_field::type_phrase(*a)));
    r.args = *a;
  }
  for (auto it = r.args.begin(); it != r.args.end(); ++it) {
    bool known = false;
    for (const auto& arg : c->args) known = known || it.key() == arg.name;
    if (!known) return invalid(r.cmd + ": unknown argument '" + printable(it.key(), 40) + "'");
  }
  for (const auto& arg : c->args) {
    if (arg.required && !r.args.contains(arg.name)) return invalid(r.cmd + " needs argument '" + arg.name + "'");
    if (auto ok = check_type(r.args, arg); !ok) return invalid(r.cmd + ": argument " + ok.error().message);
  }
  return r;
}

nlohmann::json error_reply(std::string message) { return {{"ok", false}, {"error", std::move(message)}}; }

}  // namespace ferry::control
