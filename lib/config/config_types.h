// Value types of the configuration and their parsers: sizes with units
// ("25MiB"), durations ("30s", "5d"), host:port, CIDR networks. Parsers
// return a message on error; the loader adds FILE:LINE:COL.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/expected.h"

namespace ferry::config {

using Duration = std::chrono::milliseconds;

struct HostPort {
  std::string host;  // IP literal or name, without brackets
  uint16_t port = 0;
  bool is_ipv6() const { return host.find(':') != std::string::npos; }
  std::string str() const;  // "127.0.0.1:25", "[::1]:25"
};

struct Cidr {
  int family = 0;  // AF_INET or AF_INET6
  uint8_t addr[16] = {};
  int prefix = 0;
  std::string text;
  // ip is textual; IPv4-mapped IPv6 (::ffff:a.b.c.d) matches IPv4 networks.
  bool contains(std::string_view ip) const;
};

Expected<uint64_t> parse_size(std::string_view s);
Expected<Duration> parse_duration(std::string_view s);
// require_ip: the host must be an IP literal (listeners); port 0 allowed
// when allow_port_zero (the kernel picks one; ferryd logs it).
Expected<HostPort> parse_host_port(std::string_view s, bool require_ip, bool allow_port_zero);
Expected<Cidr> parse_cidr(std::string_view s);

std::string format_duration(Duration d);

}  // namespace ferry::config
