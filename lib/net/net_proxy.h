// PROXY protocol v2 header (HAProxy, section 2.2): the real client address
// when ferryd sits behind a load balancer. Pure parser: bytes in, result
// out. Only the binary v2 form is accepted; v1 text and LOCAL commands from
// health checks are handled (LOCAL keeps the socket's own address).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ferry::net {

struct ProxyHeader {
  enum class Status { need_more, ok, error } status = Status::need_more;
  size_t consumed = 0;
  bool local = false;      // LOCAL command: use the connection's own address
  std::string client_ip;   // PROXY over TCP4/TCP6
  uint16_t client_port = 0;
  std::string error;
};

ProxyHeader parse_proxy_v2(std::string_view buf);

}  // namespace ferry::net
