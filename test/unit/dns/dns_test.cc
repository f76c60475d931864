// lib/dns: MX ordering (preference, shuffle among equals), IDNA, the fake.
#include <doctest/doctest.h>

#include <set>

#include "dns/dns.h"

using namespace ferry::dns;

TEST_CASE("MX hosts: by preference, equal preferences shuffled") {
  std::set<std::string> firsts;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    std::vector<MxHost> hosts = {{"c", 20, {}}, {"a1", 10, {}}, {"b", 30, {}}, {"a2", 10, {}}, {"a3", 10, {}}};
    std::mt19937_64 rng(seed);
    order_mx(hosts, rng);
    CHECK(hosts[0].preference == 10);
    CHECK(hosts[2].preference == 10);
    CHECK(hosts[3].name == "c");
    CHECK(hosts[4].name == "b");
    firsts.insert(hosts[0].name);
  }
  CHECK(firsts.size() == 3);  // every equal-preference host gets to be first
}

TEST_CASE("IDNA: U-labels become A-labels, ASCII is lower-cased") {
  CHECK(to_ascii_domain("Example.ORG") == "example.org");
  CHECK(to_ascii_domain("b\xC3\xBC" "cher.example") == "xn--bcher-kva.example");
  CHECK(to_ascii_domain("\xE2\x98\x83\xE2\x98\x83\xE2\x98\x83..bad") == "");
}

TEST_CASE("fake resolver answers from its table, NXDOMAIN otherwise") {
  FakeResolver f;
  f.set("a.test", MxResult{Status::ok, {{"mx.a.test", 10, {"127.0.0.2"}}}, ""});
  Status got = Status::transient;
  f.resolve_mx("A.TEST", [&](MxResult r) { got = r.status; });
  CHECK(got == Status::ok);
  f.resolve_mx("b.test", [&](MxResult r) { got = r.status; });
  CHECK(got == Status::nxdomain);
}
