// Resolver helpers shared by every implementation; see dns.h.
#include <idn2.h>

#include <algorithm>

#include "dns/dns.h"
#include "util/strings.h"

namespace ferry::dns {

void order_mx(std::vector<MxHost>& hosts, std::mt19937_64& rng) {
  std::shuffle(hosts.begin(), hosts.end(), rng);
  std::stable_sort(hosts.begin(), hosts.end(),
                   [](const MxHost& a, const MxHost& b) { return a.preference < b.preference; });
}

std::string to_ascii_domain(const std::string& domain) {
  if (is_ascii(domain)) return to_lower(domain);
  char* out = nullptr;
  int rc = idn2_to_ascii_8z(domain.c_str(), &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
  if (rc != IDN2_OK) return "";
  std::string r = out;
  idn2_free(out);
  return r;
}

void FakeResolver::resolve_mx(const std::string& domain, MxCallback cb) {
  for (const auto& [d, r] : table_)
    if (iequals(d, domain)) return cb(r);
  cb(MxResult{Status::nxdomain, {}, domain + ": NXDOMAIN"});
}

}  // namespace ferry::dns
