// c-ares on the libuv loop: the socket-state callback maps each c-ares
// socket onto a uv_poll, and one uv_timer drives c-ares' own timeouts. No
// lookup ever blocks the loop. Answers are cached for their TTL; NXDOMAIN
// and "no MX" are cached too (negative caching), transient failures are not.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "dns/dns.h"
#include "util/expected.h"

namespace ferry::dns {

// servers: "host:port" entries; empty = /etc/resolv.conf.
Expected<std::unique_ptr<Resolver>> make_ares_resolver(uv_loop_t* loop,
                                                       const std::vector<std::string>& servers);

}  // namespace ferry::dns
