// Loading: YAML text → defaults + table-driven parse → cross-key validation.
// yaml-cpp exceptions and our ConfigError stop at this file's boundary and
// become "FILE:LINE:COL: message" in an Expected.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>

#include "config/config_table.h"
#include "util/strings.h"

namespace ferry::config::detail {

void apply_dynamic_defaults(Config& c);  // config_keys.cc

std::string get_string(const YAML::Node& n) {
  if (!n.IsScalar()) fail(n, "expected a single value");
  return n.Scalar();
}

bool get_bool(const YAML::Node& n) {
  std::string v = get_string(n);
  if (v == "true") return true;
  if (v == "false") return false;
  fail(n, fmt::format("'{}' is not true or false", v));
}

uint64_t get_count(const YAML::Node& n) {
  std::string v = get_string(n);
  auto c = parse_u64(v);
  if (!c) fail(n, fmt::format("'{}' is not a whole number", v));
  return *c;
}

uint64_t get_size(const YAML::Node& n) {
  auto v = parse_size(get_string(n));
  if (!v) fail(n, v.error().message);
  return *v;
}

Duration get_duration(const YAML::Node& n) {
  auto v = parse_duration(get_string(n));
  if (!v) fail(n, v.error().message);
  return *v;
}

std::string get_path(const YAML::Node& n, const Ctx& ctx) {
  if (n.IsNull()) return "";
  std::string p = get_string(n);
  if (p.empty()) return "";
  std::filesystem::path path(p);
  if (path.is_relative() && !ctx.base_dir.empty()) path = std::filesystem::path(ctx.base_dir) / path;
  return path.lexically_normal().string();
}

std::string suggest(const std::string& path, const std::vector<std::string>& known) {
  // The closest known key by edit distance, if it is close enough to be a typo.
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  std::string best;
  size_t best_d = 4;
  for (const auto& k : known) {
    size_t d = distance(path, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best);
}

// "a.b[2].c" → "a.b[2]" → "a.b" → "a" → "": the key, then the sections above it.
std::string parent_key(const std::string& path) {
  size_t cut = path.find_last_of(".[");
  return cut == std::string::npos ? "" : path.substr(0, cut);
}

namespace {

struct Loaded {
  Config cfg;
  Ctx ctx;
};

// Where the key was written; a value that came from a default is blamed on
// the nearest section the file does have (an error at 1:1 helps no one).
YAML::Mark mark_of(const Ctx& ctx, std::string path) {
  for (; !path.empty(); path = parent_key(path))
    if (auto it = ctx.marks.find(path); it != ctx.marks.end()) return it->second;
  return YAML::Mark::null_mark();
}

[[noreturn]] void fail_at(const Ctx& ctx, const std::string& path, std::string msg) {
  throw ConfigError{mark_of(ctx, path), std::move(msg)};
}

// A file the config names must be a readable regular file. access() alone
// says yes to a directory, and reading one later throws out of yaml-cpp
// (std::ios_base::failure) or fails in ways that name no key; a FIFO
// would block the loop on open.
void require_readable(const Ctx& ctx, const std::string& key, const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 || ::access(file.c_str(), R_OK) != 0)
    fail_at(ctx, key, fmt::format("{}: cannot read '{}': {}", key, file, std::strerror(errno)));
  if (S_ISDIR(st.st_mode)) fail_at(ctx, key, fmt::format("{}: '{}' is a directory, not a file", key, file));
  if (!S_ISREG(st.st_mode)) fail_at(ctx, key, fmt::format("{}: '{}' is not a regular file", key, file));
}

void validate(const Config& c, const Ctx& ctx) {
  if (c.listeners.empty()) fail_at(ctx, "listeners", "at least one listener is needed");
  bool need_tls = false, need_users = false;
  for (size_t i = 0; i < c.listeners.size(); ++i) {
    const auto& l = c.listeners[i];
    std::string at = fmt::format("listeners[{}]", i);
    for (size_t j = 0; j < i; ++j) {
      if (c.listeners[j].name == l.name)
        fail_at(ctx, at + ".name", fmt::format("listener name '{}' is used twice", l.name));
      if (c.listeners[j].address.port != 0 && c.listeners[j].address.str() == l.address.str())
        fail_at(ctx, at + ".address",
                fmt::format("address {} is used by listener '{}' too", l.address.str(),
                            c.listeners[j].name));
    }
    if (l.tls != TlsMode::none) need_tls = true;
    if (l.auth != AuthMode::none) need_users = true;
    if (l.auth == AuthMode::required && l.tls == TlsMode::none && !l.allow_plaintext_auth)
      fail_at(ctx, at + ".auth",
              fmt::format("listener '{}' requires AUTH but has no TLS; set tls, or "
                          "allow_plaintext_auth: true on a trusted network",
                          l.name));
  }
  if (need_tls) {
    if (c.tls.certificate.empty() || c.tls.key.empty())
      fail_at(ctx, c.tls.certificate.empty() ? "tls.certificate" : "tls.key",
              "a listener uses TLS: tls.certificate and tls.key are needed");
    require_readable(ctx, "tls.certificate", c.tls.certificate);
    require_readable(ctx, "tls.key", c.tls.key);
  }
  if (need_users) {
    if (c.auth.users_file.empty())
      fail_at(ctx, "auth.users_file", "a listener offers AUTH: auth.users_file is needed");
    require_readable(ctx, "auth.users_file", c.auth.users_file);
  }
  if (!c.spool.encryption_key_file.empty())
    require_readable(ctx, "spool.encryption_key_file", c.spool.encryption_key_file);
  for (const auto& f : c.spool.previous_key_files) require_readable(ctx, "spool.previous_key_files", f);
  if (!c.spool.previous_key_files.empty() && c.spool.encryption_key_file.empty())
    fail_at(ctx, "spool.previous_key_files", "spool.previous_key_files needs spool.encryption_key_file");
  if (c.spool.path.empty()) fail_at(ctx, "spool.path", "spool.path must not be empty");
  if (c.spool.max_size < 1024 * 1024)
    fail_at(ctx, "spool.max_size", "spool.max_size must be at least 1MiB");
  if (c.limits.max_message_size == 0)
    fail_at(ctx, "limits.max_message_size", "limits.max_message_size must be above 0");
  if (c.limits.max_message_size > c.spool.max_size / 2)
    fail_at(ctx, "limits.max_message_size", "limits.max_message_size must be below half of spool.max_size");
  if (c.limits.max_recipients == 0)
    fail_at(ctx, "limits.max_recipients", "limits.max_recipients must be above 0");
  // Each check names the one key it is about, so the error points at that
  // key's line, not at its section's.
  if (c.limits.max_connections == 0)
    fail_at(ctx, "limits.max_connections", "limits.max_connections must be above 0");
  if (c.limits.max_connections_per_client == 0)
    fail_at(ctx, "limits.max_connections_per_client", "limits.max_connections_per_client must be above 0");
  if (c.timeouts.command.count() < 1000)
    fail_at(ctx, "timeouts.command", "timeouts.command must be at least 1s");
  if (c.timeouts.data.count() < 1000) fail_at(ctx, "timeouts.data", "timeouts.data must be at least 1s");
  if (c.delivery.retry.min_backoff > c.delivery.retry.max_backoff)
    fail_at(ctx, "delivery.retry.min_backoff", "delivery.retry.min_backoff is above max_backoff");
  if (c.delivery.connections_per_destination == 0)
    fail_at(ctx, "delivery.connections_per_destination", "must be at least 1");
  for (size_t i = 0; i < c.delivery.routes.size(); ++i) {
    const auto& r = c.delivery.routes[i];
    std::string at = fmt::format("delivery.routes[{}]", i);
    if (!r.username.empty() && r.password_file.empty())
      fail_at(ctx, at + ".username", "a route with username needs password_file");
    if (!r.password_file.empty()) require_readable(ctx, at + ".password_file", r.password_file);
  }
  if (c.delivery.messages_per_connection == 0)
    fail_at(ctx, "delivery.messages_per_connection", "must be at least 1");
  if (!c.delivery_log.file.empty() && c.delivery_log.retention < std::chrono::hours(24))
    fail_at(ctx, "delivery_log.file",
            "delivery_log.file rotates daily, so it cannot keep a delivery_log.retention under 1d");
  std::error_code ec;  // the throwing is_directory() would escape as filesystem_error on EACCES
  if (!c.delivery_log.file.empty() && std::filesystem::is_directory(c.delivery_log.file, ec))
    fail_at(ctx, "delivery_log.file", fmt::format("delivery_log.file: '{}' is a directory", c.delivery_log.file));
}

Expected<Config> load_node(const std::function<YAML::Node()>& parse, const std::string& name,
                           const std::string& base_dir) {
  auto where = [&](const YAML::Mark& m) {
    if (m.is_null()) return name;
    return fmt::format("{}:{}:{}", name, m.line + 1, m.column + 1);
  };
  try {
    YAML::Node root = parse();
    Config cfg;
    cfg.file = name;
    Ctx ctx{base_dir, {}, ""};
    apply_defaults(cfg, config_table(), ctx);
    std::set<std::string> seen;
    if (!root.IsNull()) load_map(cfg, root, config_table(), "", ctx, seen);
    apply_dynamic_defaults(cfg);
    validate(cfg, ctx);
    for (const auto& [path, mark] : ctx.marks) cfg.locations[path] = where(mark);
    return cfg;
  } catch (const ConfigError& e) {
    std::string w = where(e.mark);
    if (e.mark.is_null()) w += ":1:1";
    return Error(Errc::invalid, fmt::format("{}: {}", w, e.message));
  } catch (const YAML::Exception& e) {
    // yaml-cpp's own syntax errors: its message without its "yaml-cpp: error at line..." prefix.
    return Error(Errc::invalid, fmt::format("{}:{}:{}: {}", name, e.mark.line + 1, e.mark.column + 1, e.msg));
  } catch (const std::exception& e) {
    // Last resort (bad_alloc, a filesystem error): a reload runs in a
    // signal callback, where an exception would end the daemon.
    return Error(Errc::invalid, fmt::format("{}:1:1: {}", name, e.what()));
  }
}

}  // namespace
}  // namespace ferry::config::detail

namespace ferry::config {

std::string Config::where(const std::string& key) const {
  for (std::string k = key; !k.empty(); k = detail::parent_key(k))
    if (auto it = locations.find(k); it != locations.end()) return it->second;
  return file + ":1:1";
}

Expected<Config> load_file(const std::string& path) {
  // A directory opens as an ifstream and then reads as an empty config.
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    return Error(Errc::invalid, fmt::format("{}:1:1: {}", path, S_ISDIR(st.st_mode) ? "is a directory, not a file"
                                                                                       : "is not a regular file"));
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(Errc::not_found, fmt::format("{}:1:1: cannot open: {}", path, std::strerror(errno)));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string base = std::filesystem::path(path).parent_path().string();
  return load_string(ss.str(), path, base.empty() ? "." : base);
}

Expected<Config> load_string(const std::string& yaml, const std::string& name,
                             const std::string& base_dir) {
  return detail::load_node([&] { return YAML::Load(yaml); }, name, base_dir);
}

}  // namespace ferry::config
