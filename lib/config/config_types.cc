// See config_types.h.
#include "config/config_types.h"

#include <arpa/inet.h>

#include <cstring>

#include <fmt/format.h>

#include "util/strings.h"

namespace ferry::config {

std::string HostPort::str() const {
  return is_ipv6() ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

namespace {

// Splits "123unit" into the number and the unit.
bool split_number(std::string_view s, uint64_t& n, std::string_view& unit) {
  s = trim(s);
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  auto v = parse_u64(s.substr(0, i));
  if (!v) return false;
  n = *v;
  unit = trim(s.substr(i));
  return true;
}

bool mul_ok(uint64_t a, uint64_t b, uint64_t& out) {
  if (a != 0 && b > UINT64_MAX / a) return false;
  out = a * b;
  return true;
}

}  // namespace

Expected<uint64_t> parse_size(std::string_view s) {
  uint64_t n;
  std::string_view unit;
  if (!split_number(s, n, unit))
    return Error(fmt::format("'{}' is not a size (e.g. 25MiB, 512KB, 1048576)", printable(s)));
  static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {
      {"", 1},           {"B", 1},
      {"KB", 1000},      {"KiB", 1024},
      {"MB", 1000000},   {"MiB", 1024 * 1024},
      {"GB", 1000000000}, {"GiB", 1024ull * 1024 * 1024},
      {"TB", 1000000000000ull}, {"TiB", 1024ull * 1024 * 1024 * 1024},
  };
  for (const auto& [name, mult] : kUnits) {
    if (iequals(unit, name)) {
      uint64_t out;
      if (!mul_ok(n, mult, out)) return Error(fmt::format("size '{}' is too large", printable(s)));
      return out;
    }
  }
  return Error(fmt::format("unknown size unit '{}' (use B, KB, KiB, MB, MiB, GB, GiB)",
                           printable(unit)));
}

Expected<Duration> parse_duration(std::string_view s) {
  uint64_t n;
  std::string_view unit;
  if (!split_number(s, n, unit))
    return Error(fmt::format("'{}' is not a duration (e.g. 500ms, 30s, 5m, 1h, 5d)", printable(s)));
  static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}, {"w", 604'800'000},
  };
  if (unit.empty())
    return Error(fmt::format("duration '{}' needs a unit (ms, s, m, h, d, w)", printable(s)));
  for (const auto& [name, mult] : kUnits) {
    if (unit == name) {
      uint64_t out;
      if (!mul_ok(n, mult, out) || out > uint64_t(INT64_MAX))
        return Error(fmt::format("duration '{}' is too large", printable(s)));
      return Duration(int64_t(out));
    }
  }
  return Error(fmt::format("unknown duration unit '{}' (use ms, s, m, h, d, w)", printable(unit)));
}

std::string format_duration(Duration d) {
  auto ms = d.count();
  if (ms % 86'400'000 == 0 && ms) return fmt::format("{}d", ms / 86'400'000);
  if (ms % 3'600'000 == 0 && ms) return fmt::format("{}h", ms / 3'600'000);
  if (ms % 60'000 == 0 && ms) return fmt::format("{}m", ms / 60'000);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

Expected<HostPort> parse_host_port(std::string_view s, bool require_ip, bool allow_port_zero) {
  HostPort hp;
  std::string_view host, port;
  auto bad = [&](std::string_view why) {
    return Error(fmt::format("'{}' is not a valid address: {} (use host:port, [IPv6]:port)",
                             printable(s), why));
  };
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return bad("missing ']:port'");
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    unsigned char buf[16];
    if (inet_pton(AF_INET6, std::string(host).c_str(), buf) != 1) return bad("bad IPv6 address");
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return bad("missing port");
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return bad("IPv6 addresses need brackets");
    if (host.empty()) return bad("missing host");
    unsigned char buf[4];
    bool ip = inet_pton(AF_INET, std::string(host).c_str(), buf) == 1;
    if (require_ip && !ip) return bad("host must be an IP address");
    if (!ip) {
      for (char c : host)
        if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
          return bad("bad host name");
    }
  }
  auto p = parse_u64(port);
  if (!p || *p > 65535 || (*p == 0 && !allow_port_zero)) return bad("bad port");
  hp.host = std::string(host);
  hp.port = uint16_t(*p);
  return hp;
}

Expected<Cidr> parse_cidr(std::string_view s) {
  Cidr c;
  c.text = std::string(s);
  std::string_view addr = s;
  std::optional<uint64_t> prefix;
  size_t slash = s.find('/');
  if (slash != std::string_view::npos) {
    addr = s.substr(0, slash);
    prefix = parse_u64(s.substr(slash + 1));
    if (!prefix) return Error(fmt::format("'{}' has a bad prefix length", printable(s)));
  }
  std::string a(addr);
  if (inet_pton(AF_INET, a.c_str(), c.addr) == 1) {
    c.family = AF_INET;
    c.prefix = int(prefix.value_or(32));
    if (c.prefix > 32) return Error(fmt::format("'{}': IPv4 prefix is at most 32", printable(s)));
  } else if (inet_pton(AF_INET6, a.c_str(), c.addr) == 1) {
    c.family = AF_INET6;
    c.prefix = int(prefix.value_or(128));
    if (c.prefix > 128) return Error(fmt::format("'{}': IPv6 prefix is at most 128", printable(s)));
  } else {
    return Error(fmt::format("'{}' is not a network (e.g. 10.0.0.0/8, ::1/128)", printable(s)));
  }
  return c;
}

bool Cidr::contains(std::string_view ip_text) const {
  std::string ip(ip_text);
  uint8_t buf[16];
  int fam;
  if (inet_pton(AF_INET, ip.c_str(), buf) == 1) {
    fam = AF_INET;
  } else if (inet_pton(AF_INET6, ip.c_str(), buf) == 1) {
    fam = AF_INET6;
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET && std::memcmp(buf, kMapped, 12) == 0) {
      std::memmove(buf, buf + 12, 4);
      fam = AF_INET;
    }
  } else {
    return false;
  }
  if (fam != family) return false;
  int full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(buf, addr, size_t(full)) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = uint8_t(0xFF << (8 - rest));
  return (buf[full] & mask) == (addr[full] & mask);
}

}  // namespace ferry::config
