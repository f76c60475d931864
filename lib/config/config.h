// The typed, validated configuration of ferryd. Every key, its default and
// its documentation live in one table (config_keys.cc); the loader, the
// defaults and the man-page check all read that table.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config_types.h"
#include "util/expected.h"
#include "util/log.h"

namespace ferry::config {

enum class TlsMode { none, starttls, implicit };
enum class AuthMode { none, optional, required };
enum class SyncMode { full, none };
enum class OutTls { none, may, encrypt, verify };

struct ListenerConfig {
  std::string name;
  HostPort address;
  TlsMode tls = TlsMode::none;
  AuthMode auth = AuthMode::none;
  bool proxy_protocol = false;
  bool allow_plaintext_auth = false;
};

struct RouteConfig {
  std::string domain;  // "*" = every domain (smarthost)
  HostPort host;
  std::string username;       // AUTH PLAIN to the host when set
  std::string password_file;  // first line is the password
};

struct Config {
  std::string file;  // the file it was loaded from
  // Where each key was written, "FILE:LINE:COL", by dotted path
  // ("timeouts.command", "listeners[0].name"): errors found after loading
  // (a users file that is a directory, a certificate OpenSSL refuses)
  // point at the key that named the file.
  std::map<std::string, std::string> locations;
  // The location of `key`, else of the nearest section above it that was
  // written, else FILE:1:1.
  std::string where(const std::string& key) const;

  struct {
    std::string hostname;
    Duration shutdown_timeout{};
  } server;
  std::vector<ListenerConfig> listeners;
  struct {
    std::string certificate;
    std::string key;
    std::string min_version;  // "1.2" | "1.3"
  } tls;
  struct {
    std::string users_file;
    Duration failure_delay{};
    uint64_t max_failures = 0;
  } auth;
  struct {
    std::vector<Cidr> trusted_networks;
  } relay;
  struct {
    uint64_t max_message_size = 0;
    uint64_t max_recipients = 0;
    uint64_t max_connections = 0;
    uint64_t max_connections_per_client = 0;
    uint64_t max_errors = 0;
  } limits;
  struct {
    Duration command{};
    Duration data{};
    uint64_t min_data_rate = 0;  // bytes/s; 0: no minimum
    Duration handshake{};
    Duration session{};          // 0: no cap
  } timeouts;
  struct {
    std::string path;
    SyncMode sync = SyncMode::full;
    std::string encryption_key_file;  // empty: not encrypted
    std::vector<std::string> previous_key_files;  // still open old records
    uint64_t max_size = 0;
  } spool;
  struct {
    std::vector<HostPort> servers;
  } dns;
  struct {
    uint16_t port = 25;
    uint64_t connections_per_destination = 0;
    uint64_t messages_per_connection = 0;
    Duration idle_timeout{};
    Duration connect_timeout{};
    OutTls tls = OutTls::may;
    Duration tls_fallback_ttl{};  // may: how long a host with broken STARTTLS gets plaintext
    struct {
      Duration min_backoff{}, max_backoff{}, max_lifetime{};
    } retry;
    std::vector<RouteConfig> routes;
  } delivery;
  struct {
    Duration retention{};
    bool subject = true;
    std::string file;  // empty: no JSON-lines stream
  } delivery_log;
  struct {
    std::string socket;
  } control;
  struct {
    bool automatic = true;
  } suppression;
  struct {
    Duration interval{};
    uint64_t messages_per_user = 0, recipients_per_user = 0;
    uint64_t messages_per_client = 0, recipients_per_client = 0;
    uint64_t connections_per_minute = 0;
    uint64_t auth_failures = 0;
    Duration auth_lockout{};
  } rate_limits;
  struct {
    std::optional<HostPort> address;
  } metrics;
  struct {
    log::Format format = log::Format::text;
    log::Level level = log::Level::info;
  } logging;
};

// Loads and validates. On error the message reads "FILE:LINE:COL: message".
Expected<Config> load_file(const std::string& path);
// Same, from text (tests); name stands in for the file name, base_dir
// resolves relative paths.
Expected<Config> load_string(const std::string& yaml, const std::string& name,
                             const std::string& base_dir);

struct KeyDoc {
  std::string path;  // "limits.max_message_size", "listeners[].name"
  std::string def;   // default as YAML text; "" when required or no default
  std::string doc;
};
std::vector<KeyDoc> all_keys();

}  // namespace ferry::config
