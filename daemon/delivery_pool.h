// Idle outbound connections kept for reuse, keyed by "ip:port" (plus the
// AUTH identity of a route with credentials): a session to an MX host
// serves the next message for any destination that host serves. Each idle
// connection closes after delivery.idle_timeout.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "net/net_timer.h"

namespace ferry {

class SmtpClient;

class ConnectionPool {
 public:
  explicit ConnectionPool(uv_loop_t* loop) : loop_(loop) {}
  // Returns an idle client for key, or nullptr.
  SmtpClient* take(const std::string& key);
  // Parks a client; it is quit after idle_ms unless taken again.
  void put(const std::string& key, SmtpClient* client, uint64_t idle_ms, size_t max_idle);
  // A client closed (by the server, or after QUIT): forget it.
  void forget(SmtpClient* client);
  // Quits every idle client (shutdown, reload).
  void quit_all();

 private:
  struct Idle {
    SmtpClient* client;
    std::unique_ptr<net::Timer> timer;
  };
  uv_loop_t* loop_;
  std::map<std::string, std::vector<Idle>> idle_;
};

}  // namespace ferry
