// Internal to lib/config: the key-table machinery. A table row names a key
// (dotted path), its default as YAML text, its documentation, and a parser
// that stores the value. yaml-cpp throws; so do these helpers (ConfigError),
// and load_file/load_string turn it into FILE:LINE:COL text at the boundary.
#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <map>
#include <set>
#include <span>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "config/config.h"

namespace ferry::config::detail {

struct ConfigError {
  YAML::Mark mark;
  std::string message;
};

struct Ctx {
  std::string base_dir;                     // relative paths resolve against it
  std::map<std::string, YAML::Mark> marks;  // where each key was written
  std::string scope;                        // "listeners[0]." while inside a list item
};

template <class T>
struct Key {
  const char* path;
  const char* def;  // nullptr: required (list items) or no default
  const char* doc;
  void (*parse)(T&, const YAML::Node&, Ctx&);
};

std::span<const Key<Config>> config_table();
std::span<const Key<ListenerConfig>> listener_table();
std::span<const Key<RouteConfig>> route_table();

[[noreturn]] inline void fail(const YAML::Node& n, std::string msg) {
  throw ConfigError{n.Mark(), std::move(msg)};
}

std::string get_string(const YAML::Node& n);
bool get_bool(const YAML::Node& n);
uint64_t get_count(const YAML::Node& n);
uint64_t get_size(const YAML::Node& n);
Duration get_duration(const YAML::Node& n);
std::string get_path(const YAML::Node& n, const Ctx& ctx);  // null → ""

template <class E>
E get_enum(const YAML::Node& n, std::initializer_list<std::pair<const char*, E>> choices) {
  std::string v = get_string(n);
  std::string names;
  for (const auto& [name, value] : choices) {
    if (v == name) return value;
    names += names.empty() ? name : std::string(" | ") + name;
  }
  fail(n, fmt::format("'{}' is not one of: {}", v, names));
}

std::string suggest(const std::string& path, const std::vector<std::string>& known);
// "a.b[2].c" → "a.b[2]" → "a.b" → "a" → "".
std::string parent_key(const std::string& path);

template <class T>
void load_map(T& out, const YAML::Node& map, std::span<const Key<T>> table,
              const std::string& prefix, Ctx& ctx, std::set<std::string>& seen) {
  if (map.IsNull()) return;  // "section:" with nothing under it
  if (!map.IsMap())
    fail(map, prefix.empty() ? "expected a mapping of keys"
                             : fmt::format("'{}' must be a mapping of keys", ctx.scope + prefix));
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar()) fail(it->first, "keys must be plain names");
    std::string key = it->first.Scalar();
    std::string path = prefix.empty() ? key : prefix + "." + key;
    if (seen.count(path)) fail(it->first, fmt::format("key '{}' is given twice", ctx.scope + path));
    const Key<T>* match = nullptr;
    bool is_section = false;
    std::vector<std::string> known;
    for (const auto& k : table) {
      std::string kp = k.path;
      known.push_back(kp);
      for (size_t dot = kp.find('.'); dot != std::string::npos; dot = kp.find('.', dot + 1))
        known.push_back(kp.substr(0, dot));  // sections too: "limit" → "limits"
      if (kp == path) match = &k;
      if (kp.size() > path.size() && kp.compare(0, path.size() + 1, path + ".") == 0)
        is_section = true;
    }
    if (match) {
      seen.insert(path);
      ctx.marks[ctx.scope + path] = it->first.Mark();
      match->parse(out, it->second, ctx);
    } else if (is_section) {
      seen.insert(path);
      ctx.marks[ctx.scope + path] = it->first.Mark();
      load_map(out, it->second, table, path, ctx, seen);
    } else {
      fail(it->first, fmt::format("unknown key '{}'{}", ctx.scope + path, suggest(path, known)));
    }
  }
}

template <class T>
void apply_defaults(T& out, std::span<const Key<T>> table, Ctx& ctx) {
  for (const auto& k : table)
    if (k.def != nullptr) k.parse(out, YAML::Load(k.def), ctx);
}

}  // namespace ferry::config::detail
