// See net_proxy.h.
#include "net/net_proxy.h"

#include <arpa/inet.h>

#include <cstring>

namespace ferry::net {

ProxyHeader parse_proxy_v2(std::string_view buf) {
  static constexpr char kSig[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};
  ProxyHeader h;
  size_t have = std::min(buf.size(), sizeof kSig);
  if (std::memcmp(buf.data(), kSig, have) != 0) {
    h.status = ProxyHeader::Status::error;
    h.error = "expected a PROXY protocol v2 header";
    return h;
  }
  if (buf.size() < 16) return h;
  auto b = [&](size_t i) { return static_cast<unsigned char>(buf[i]); };
  unsigned ver_cmd = b(12), fam = b(13);
  size_t len = (size_t(b(14)) << 8) | b(15);
  if ((ver_cmd >> 4) != 2) {
    h.status = ProxyHeader::Status::error;
    h.error = "unsupported PROXY protocol version";
    return h;
  }
  if (buf.size() < 16 + len) return h;
  h.consumed = 16 + len;
  unsigned cmd = ver_cmd & 0x0F;
  if (cmd == 0) {  // LOCAL
    h.local = true;
    h.status = ProxyHeader::Status::ok;
    return h;
  }
  if (cmd != 1) {
    h.status = ProxyHeader::Status::error;
    h.error = "unknown PROXY command";
    return h;
  }
  char text[INET6_ADDRSTRLEN] = {};
  const char* addr = buf.data() + 16;
  if (fam == 0x11 && len >= 12) {  // TCP over IPv4
    inet_ntop(AF_INET, addr, text, sizeof text);
    h.client_port = uint16_t((b(16 + 8) << 8) | b(16 + 9));
  } else if (fam == 0x21 && len >= 36) {  // TCP over IPv6
    inet_ntop(AF_INET6, addr, text, sizeof text);
    h.client_port = uint16_t((b(16 + 32) << 8) | b(16 + 33));
  } else if (fam == 0x00) {  // UNSPEC: treat as LOCAL
    h.local = true;
    h.status = ProxyHeader::Status::ok;
    return h;
  } else {
    h.status = ProxyHeader::Status::error;
    h.error = "unsupported PROXY address family";
    return h;
  }
  h.client_ip = text;
  h.status = ProxyHeader::Status::ok;
  return h;
}

}  // namespace ferry::net
