// What a session needs from the configuration, built once per (re)load:
// the config itself plus objects made from it (TLS context, users). Sessions
// keep the snapshot they started with, so a reload never changes the rules
// in the middle of a conversation.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "auth/auth_users.h"
#include "config/config.h"
#include "net/net_tls.h"
#include "util/expected.h"

namespace ferry {

struct Runtime {
  config::Config cfg;
  std::shared_ptr<net::TlsContext> tls;          // null when no listener uses TLS
  std::shared_ptr<const auth::UserDb> users;     // null when no listener offers AUTH
  std::shared_ptr<net::TlsContext> client_tls;   // outbound STARTTLS; null with delivery.tls: none
  std::map<std::string, std::string> route_passwords;  // route host:port → password
};

// Builds a runtime from a loaded config: reads certificates and users.
// Errors name the file and line of the key (or the users file's own line).
Expected<std::shared_ptr<const Runtime>> build_runtime(config::Config cfg);

// --check-config: everything start-up would read from the files the config
// names (users, certificates, passwords, encryption keys), without
// opening the spool or binding sockets.
Expected<void> check_runtime(const config::Config& cfg);

}  // namespace ferry
