// See dns_ares.h.
#include "dns/dns_ares.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

#include <algorithm>
#include <map>
#include <unordered_map>

#include <fmt/format.h>

#include "util/log.h"
#include "util/strings.h"

namespace ferry::dns {
namespace {

constexpr int64_t kNegativeTtlMs = 60'000;
constexpr int64_t kMaxTtlMs = 3'600'000;

// The smallest TTL among a response's answer records, in ms (c-ares' MX
// parser drops TTLs, so the answer section is walked here).
int64_t min_ttl_ms(const unsigned char* abuf, int alen) {
  if (alen < 12) return 0;
  int qd = (abuf[4] << 8) | abuf[5], an = (abuf[6] << 8) | abuf[7];
  const unsigned char* p = abuf + 12;
  const unsigned char* end = abuf + alen;
  auto skip_name = [&]() -> bool {
    char* name = nullptr;
    long len = 0;
    if (ares_expand_name(p, abuf, alen, &name, &len) != ARES_SUCCESS) return false;
    ares_free_string(name);
    p += len;
    return p <= end;
  };
  for (int i = 0; i < qd; ++i) {
    if (!skip_name() || end - p < 4) return 0;
    p += 4;
  }
  int64_t ttl = kMaxTtlMs;
  for (int i = 0; i < an; ++i) {
    if (!skip_name() || end - p < 10) return 0;
    uint32_t t = (uint32_t(p[4]) << 24) | (uint32_t(p[5]) << 16) | (uint32_t(p[6]) << 8) | p[7];
    int rdlen = (p[8] << 8) | p[9];
    p += 10 + rdlen;
    if (p > end) return 0;
    ttl = std::min<int64_t>(ttl, int64_t(t) * 1000);
  }
  return ttl;
}

bool is_ip_literal(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

struct MxCache {
  int64_t expires = 0;
  Status status = Status::ok;
  std::vector<std::pair<uint16_t, std::string>> hosts;
  std::string error;
};
struct AddrCache {
  int64_t expires = 0;
  std::vector<std::string> v4, v6;
  bool nxdomain = false;
};

class AresResolver final : public Resolver {
 public:
  explicit AresResolver(uv_loop_t* loop) : loop_(loop), rng_(std::random_device{}()) {}

  ~AresResolver() override {
    *alive_ = false;  // callbacks fired by ares_destroy are dropped
    if (ch_) ares_destroy(ch_);
    for (auto& [fd, poll] : polls_)
      uv_close(reinterpret_cast<uv_handle_t*>(poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    if (timer_)
      uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    ares_library_cleanup();
  }

  Expected<void> init(const std::vector<std::string>& servers) {
    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) return Error(fmt::format("c-ares: {}", ares_strerror(rc)));
    ares_options opts{};
    opts.sock_state_cb = &AresResolver::sock_state;
    opts.sock_state_cb_data = this;
    opts.timeout = 3000;  // ms per try (ARES_OPT_TIMEOUTMS)
    opts.tries = 2;
    rc = ares_init_options(&ch_, &opts, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) return Error(fmt::format("c-ares init: {}", ares_strerror(rc)));
    if (!servers.empty()) {
      std::string csv;
      for (const auto& s : servers) csv += (csv.empty() ? "" : ",") + s;
      rc = ares_set_servers_ports_csv(ch_, csv.c_str());
      if (rc != ARES_SUCCESS) return Error(fmt::format("dns.servers {}: {}", csv, ares_strerror(rc)));
    }
    timer_ = new uv_timer_t;
    uv_timer_init(loop_, timer_);
    timer_->data = this;
    return {};
  }

  void resolve_mx(const std::string& domain_in, MxCallback cb) override {
    std::string domain = domain_in;
    if (domain.size() > 2 && domain.front() == '[' && domain.back() == ']') {
      // Address literal: no DNS at all.
      std::string ip = domain.substr(1, domain.size() - 2);
      if (istarts_with(ip, "IPv6:")) ip = ip.substr(5);
      return cb(MxResult{Status::ok, {MxHost{domain, 0, {ip}}}, ""});
    }
    domain = to_ascii_domain(domain);
    if (domain.empty()) return cb(MxResult{Status::nxdomain, {}, domain_in + ": invalid domain name"});
    int64_t now = int64_t(uv_now(loop_));
    auto it = mx_cache_.find(domain);
    if (it != mx_cache_.end() && it->second.expires > now) return with_mx(domain, it->second, std::move(cb));
    auto alive = alive_;
    query(domain, ns_t_mx, [this, alive, domain, cb = std::move(cb)](int status, const unsigned char* abuf, int alen) mutable {
      if (!*alive) return;
      MxCache c;
      int64_t now = int64_t(uv_now(loop_));
      if (status == ARES_SUCCESS) {
        ares_mx_reply* mx = nullptr;
        int prc = ares_parse_mx_reply(abuf, alen, &mx);
        if (prc == ARES_SUCCESS) {
          for (auto* m = mx; m; m = m->next) c.hosts.emplace_back(m->priority, m->host ? m->host : "");
          ares_free_data(mx);
          c.expires = now + std::max<int64_t>(1000, min_ttl_ms(abuf, alen));
          // RFC 7505: a single MX of "." means the domain accepts no mail.
          if (c.hosts.size() == 1 && (c.hosts[0].second.empty() || c.hosts[0].second == "."))
            c.status = Status::null_mx;
        } else if (prc == ARES_ENODATA) {
          status = ARES_ENODATA;
        } else {
          c.status = Status::transient;
          c.error = fmt::format("{}: bad MX answer: {}", domain, ares_strerror(prc));
        }
      }
      if (status == ARES_ENODATA) {
        c.hosts = {{0, domain}};  // implicit MX (RFC 5321 §5.1)
        c.expires = now + kNegativeTtlMs;
      } else if (status == ARES_ENOTFOUND) {
        c.status = Status::nxdomain;
        c.error = domain + ": domain does not exist (NXDOMAIN)";
        c.expires = now + kNegativeTtlMs;
      } else if (status != ARES_SUCCESS) {
        c.status = Status::transient;
        c.error = fmt::format("{}: MX lookup failed: {}", domain, ares_strerror(status));
      }
      if (c.expires > 0) mx_cache_[domain] = c;
      with_mx(domain, c, std::move(cb));
    });
  }

  void resolve_host(const std::string& host, MxCallback cb) override {
    std::string h = to_ascii_domain(host);
    auto alive = alive_;
    addresses(h, [alive, h, cb = std::move(cb)](const AddrCache& a, const std::string& err) {
      if (!*alive) return;
      MxResult r;
      MxHost mh{h, 0, a.v4};
      mh.addresses.insert(mh.addresses.end(), a.v6.begin(), a.v6.end());
      if (mh.addresses.empty()) {
        r.status = a.nxdomain ? Status::nxdomain : Status::transient;
        r.error = err.empty() ? h + ": no address" : err;
      } else {
        r.status = Status::ok;
        r.hosts.push_back(std::move(mh));
      }
      cb(std::move(r));
    });
  }

 private:
  using RawCallback = std::function<void(int status, const unsigned char* abuf, int alen)>;

  void query(const std::string& name, int type, RawCallback fn) {
    auto* heap = new RawCallback(std::move(fn));
    ares_query(ch_, name.c_str(), ns_c_in, type,
               [](void* arg, int status, int, unsigned char* abuf, int alen) {
                 std::unique_ptr<RawCallback> f(static_cast<RawCallback*>(arg));
                 if (status == ARES_EDESTRUCTION) return;
                 (*f)(status, abuf, alen);
               },
               heap);
    rearm_timer();
  }

  // Resolves every exchanger's addresses, then answers.
  void with_mx(const std::string& domain, const MxCache& c, MxCallback cb) {
    if (c.status != Status::ok) return cb(MxResult{c.status, {}, c.error});
    struct Gather {
      std::vector<MxHost> hosts;
      size_t pending = 0;
      std::string last_error;
      MxCallback cb;
    };
    auto g = std::make_shared<Gather>();
    g->cb = std::move(cb);
    for (const auto& [pref, name] : c.hosts) g->hosts.push_back(MxHost{name, pref, {}});
    g->pending = g->hosts.size();
    auto alive = alive_;
    for (size_t i = 0; i < g->hosts.size(); ++i) {
      addresses(g->hosts[i].name, [this, alive, g, i, domain](const AddrCache& a, const std::string& err) {
        if (!*alive) return;
        // IPv4 first: many hosts have no IPv6 route, and a refused
        // connection costs a full round of the MX list.
        g->hosts[i].addresses = a.v4;
        g->hosts[i].addresses.insert(g->hosts[i].addresses.end(), a.v6.begin(), a.v6.end());
        if (!err.empty()) g->last_error = err;
        if (--g->pending > 0) return;
        std::vector<MxHost> usable;
        for (auto& h : g->hosts)
          if (!h.addresses.empty()) usable.push_back(std::move(h));
        if (usable.empty())
          return g->cb(MxResult{Status::transient, {},
                                g->last_error.empty() ? domain + ": no address for any MX host" : g->last_error});
        order_mx(usable, rng_);
        g->cb(MxResult{Status::ok, std::move(usable), ""});
      });
    }
  }

  using AddrFn = std::function<void(const AddrCache&, const std::string& error)>;

  void addresses(const std::string& host, AddrFn fn) {
    if (is_ip_literal(host)) {
      AddrCache a;
      (host.find(':') == std::string::npos ? a.v4 : a.v6).push_back(host);
      return fn(a, "");
    }
    int64_t now = int64_t(uv_now(loop_));
    auto it = addr_cache_.find(host);
    if (it != addr_cache_.end() && it->second.expires > now) return fn(it->second, "");
    struct Both {
      AddrCache a;
      int pending = 2;
      int64_t ttl = kMaxTtlMs;
      bool transient = false;
      std::string error;
      AddrFn fn;
    };
    auto b = std::make_shared<Both>();
    b->fn = std::move(fn);
    auto alive = alive_;
    auto done = [this, b, host]() {
      if (--b->pending > 0) return;
      int64_t now = int64_t(uv_now(loop_));
      if (!b->transient) {
        b->a.expires = now + (b->a.v4.empty() && b->a.v6.empty() ? kNegativeTtlMs : std::max<int64_t>(1000, b->ttl));
        addr_cache_[host] = b->a;
      }
      b->fn(b->a, b->a.v4.empty() && b->a.v6.empty() ? b->error : "");
    };
    for (int type : {int(ns_t_a), int(ns_t_aaaa)}) {
      query(host, type, [alive, b, type, host, done](int status, const unsigned char* abuf, int alen) {
        if (!*alive) return;
        if (status == ARES_SUCCESS) {
          b->ttl = std::min(b->ttl, min_ttl_ms(abuf, alen));
          char text[INET6_ADDRSTRLEN];
          if (type == ns_t_a) {
            ares_addrttl at[32];
            int n = 32;
            if (ares_parse_a_reply(abuf, alen, nullptr, at, &n) == ARES_SUCCESS)
              for (int i = 0; i < n; ++i)
                b->a.v4.push_back(inet_ntop(AF_INET, &at[i].ipaddr, text, sizeof text));
          } else {
            ares_addr6ttl at[32];
            int n = 32;
            if (ares_parse_aaaa_reply(abuf, alen, nullptr, at, &n) == ARES_SUCCESS)
              for (int i = 0; i < n; ++i)
                b->a.v6.push_back(inet_ntop(AF_INET6, &at[i].ip6addr, text, sizeof text));
          }
        } else if (status == ARES_ENOTFOUND) {
          b->a.nxdomain = true;
          b->error = host + ": host not found";
        } else if (status != ARES_ENODATA) {
          b->transient = true;
          b->error = fmt::format("{}: address lookup failed: {}", host, ares_strerror(status));
        }
        done();
      });
    }
  }

  static void sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<AresResolver*>(data);
    auto it = self->polls_.find(fd);
    if (!readable && !writable) {
      if (it != self->polls_.end()) {
        uv_poll_stop(it->second);
        uv_close(reinterpret_cast<uv_handle_t*>(it->second),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
        self->polls_.erase(it);
      }
      return;
    }
    uv_poll_t* poll;
    if (it == self->polls_.end()) {
      poll = new uv_poll_t;
      uv_poll_init_socket(self->loop_, poll, fd);
      poll->data = self;
      self->polls_[fd] = poll;
    } else {
      poll = it->second;
    }
    int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
    uv_poll_start(poll, events, [](uv_poll_t* p, int status, int ev) {
      auto* self = static_cast<AresResolver*>(p->data);
      ares_socket_t sock = -1;
      for (auto& [fd, h] : self->polls_)
        if (h == p) sock = fd;
      if (status < 0) ev = UV_READABLE | UV_WRITABLE;  // let c-ares see the error
      ares_process_fd(self->ch_, (ev & UV_READABLE) ? sock : ARES_SOCKET_BAD,
                      (ev & UV_WRITABLE) ? sock : ARES_SOCKET_BAD);
      self->rearm_timer();
    });
  }

  void rearm_timer() {
    timeval tv{};
    timeval* t = ares_timeout(ch_, nullptr, &tv);
    if (t == nullptr) {
      uv_timer_stop(timer_);
      return;
    }
    uint64_t ms = uint64_t(t->tv_sec) * 1000 + uint64_t(t->tv_usec) / 1000;
    uv_timer_start(timer_, [](uv_timer_t* h) {
      auto* self = static_cast<AresResolver*>(h->data);
      ares_process_fd(self->ch_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      self->rearm_timer();
    }, ms == 0 ? 1 : ms, 0);
  }

  uv_loop_t* loop_;
  ares_channel ch_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  std::map<ares_socket_t, uv_poll_t*> polls_;
  std::unordered_map<std::string, MxCache> mx_cache_;
  std::unordered_map<std::string, AddrCache> addr_cache_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::mt19937_64 rng_;
};

}  // namespace

Expected<std::unique_ptr<Resolver>> make_ares_resolver(uv_loop_t* loop, const std::vector<std::string>& servers) {
  auto r = std::make_unique<AresResolver>(loop);
  if (auto rc = r->init(servers); !rc) return rc.error();
  return std::unique_ptr<Resolver>(std::move(r));
}

}  // namespace ferry::dns
