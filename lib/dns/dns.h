// Resolving where mail for a domain goes: MX records (RFC 5321 §5.1), then
// each exchanger's addresses. The Resolver interface has a c-ares
// implementation on the libuv loop and a fake for tests. Outcomes are
// classified the way delivery needs them: permanent (NXDOMAIN, null MX)
// or transient (SERVFAIL, timeout, no reachable address).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace ferry::dns {

struct MxHost {
  std::string name;
  uint16_t preference = 0;
  std::vector<std::string> addresses;  // textual IPv4 / IPv6, in the order to try
};

enum class Status { ok, null_mx, nxdomain, transient };

struct MxResult {
  Status status = Status::transient;
  std::vector<MxHost> hosts;  // ok: sorted by preference, equal ones shuffled
  std::string error;          // for logs and DSNs
};

using MxCallback = std::function<void(MxResult)>;

class Resolver {
 public:
  virtual ~Resolver() = default;
  // MX for domain; no MX records → the domain itself (implicit MX).
  virtual void resolve_mx(const std::string& domain, MxCallback cb) = 0;
  // One host's addresses, as a single-host result (routes to a host name).
  virtual void resolve_host(const std::string& host, MxCallback cb) = 0;
};

// Sorts by preference and shuffles hosts of equal preference (RFC 5321
// §5.1 says to spread load among them). Pure; rng injected for tests.
void order_mx(std::vector<MxHost>& hosts, std::mt19937_64& rng);

// U-label domains to A-labels (IDNA2008, libidn2); ASCII passes through.
// Returns empty on an invalid name.
std::string to_ascii_domain(const std::string& domain);

// A resolver that answers from a table, synchronously. For tests.
class FakeResolver final : public Resolver {
 public:
  void set(const std::string& domain, MxResult r) { table_.emplace_back(domain, std::move(r)); }
  void resolve_mx(const std::string& domain, MxCallback cb) override;
  void resolve_host(const std::string& host, MxCallback cb) override { resolve_mx(host, std::move(cb)); }

 private:
  std::vector<std::pair<std::string, MxResult>> table_;
};

}  // namespace ferry::dns
