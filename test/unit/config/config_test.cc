// lib/config: units, defaults, FILE:LINE:COL errors, the key table against
// the man page and conf/ferry.yaml.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "config/config.h"

using namespace ferry::config;

namespace {
std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
const char* kMinimal =
    "listeners:\n"
    "  - name: relay\n"
    "    address: 127.0.0.1:2525\n";
}  // namespace

// Each case's YAML must fail to load with a message starting with `expect`.
template <class Cases>
void expect_errors(const Cases& cases) {
  for (const auto& c : cases) {
    CAPTURE(c.yaml);
    auto r = load_string(c.yaml, "t.yaml", "/tmp");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.rfind(c.expect, 0) == 0);
    if (r.error().message.rfind(c.expect, 0) != 0) MESSAGE(r.error().message);
  }
}

TEST_CASE("sizes and durations") {
  CHECK(*parse_size("25MiB") == 25ull * 1024 * 1024);
  CHECK(*parse_size("512KB") == 512000);
  CHECK(*parse_size("100") == 100);
  CHECK_FALSE(parse_size("25 furlongs").ok());
  CHECK_FALSE(parse_size("99999999999999999999GiB").ok());
  CHECK(parse_duration("30s")->count() == 30000);
  CHECK(parse_duration("5d")->count() == 5ll * 86400000);
  CHECK(parse_duration("250ms")->count() == 250);
  CHECK_FALSE(parse_duration("30").ok());  // a unit is required
  CHECK_FALSE(parse_duration("3x").ok());
  CHECK(format_duration(Duration(5 * 60000)) == "5m");
}

TEST_CASE("addresses and networks") {
  CHECK(parse_host_port("127.0.0.1:25", true, false)->port == 25);
  CHECK(parse_host_port("[::1]:2587", true, false)->host == "::1");
  CHECK(parse_host_port("[::1]:2587", true, false)->str() == "[::1]:2587");
  CHECK(parse_host_port("mx.example:25", false, false).ok());
  CHECK_FALSE(parse_host_port("mx.example:25", true, false).ok());
  CHECK_FALSE(parse_host_port("::1:25", true, false).ok());
  CHECK_FALSE(parse_host_port("127.0.0.1:70000", true, false).ok());
  CHECK_FALSE(parse_host_port("127.0.0.1:0", true, false).ok());
  CHECK(parse_host_port("127.0.0.1:0", true, true).ok());
  auto net = parse_cidr("10.1.0.0/16");
  REQUIRE(net.ok());
  CHECK(net->contains("10.1.200.3"));
  CHECK_FALSE(net->contains("10.2.0.1"));
  CHECK(net->contains("::ffff:10.1.0.9"));
  auto v6 = parse_cidr("2001:db8::/32");
  CHECK(v6->contains("2001:db8:1::5"));
  CHECK_FALSE(v6->contains("10.1.0.1"));
  CHECK(parse_cidr("192.0.2.1")->contains("192.0.2.1"));
  CHECK_FALSE(parse_cidr("10.0.0.0/33").ok());
  CHECK_FALSE(parse_cidr("nonsense").ok());
}

TEST_CASE("defaults come from the table") {
  auto c = load_string(kMinimal, "t.yaml", "/tmp");
  REQUIRE_MESSAGE(c.ok(), c.error().message);
  CHECK(c->limits.max_message_size == 25ull * 1024 * 1024);
  CHECK(c->limits.max_recipients == 1000);
  CHECK(c->spool.sync == SyncMode::full);
  CHECK(c->delivery.retry.max_lifetime.count() == 5ll * 86400000);
  CHECK(c->relay.trusted_networks.size() == 2);
  CHECK(c->listeners[0].tls == TlsMode::none);
  CHECK_FALSE(c->server.hostname.empty());
  CHECK(c->delivery_log.retention.count() == 90ll * 86400000);
}

TEST_CASE("errors carry FILE:LINE:COL") {
  struct Case {
    std::string yaml;
    std::string expect;
  } cases[] = {
      {std::string(kMinimal) + "limits:\n  max_mesage_size: 10MiB\n",
       "t.yaml:5:3: unknown key 'limits.max_mesage_size' (did you mean 'limits.max_message_size'?)"},
      {std::string(kMinimal) + "limits:\n  max_message_size: lots\n", "t.yaml:5:21: 'lots' is not a size"},
      {std::string(kMinimal) + "spool:\n  sync: sometimes\n", "t.yaml:5:9: 'sometimes' is not one of: full | none"},
      {"listeners:\n  - name: a\n    address: localhost:25\n", "t.yaml:3:14: 'localhost:25' is not a valid address"},
      {"listeners:\n  - address: 127.0.0.1:25\n", "t.yaml:2:5: listeners[0] needs 'name'"},
      {"listeners:\n  - name: a\n    address: 127.0.0.1:25\n    tls: starttls\n",
       "t.yaml:1:1: a listener uses TLS: tls.certificate and tls.key are needed"},
      {"listeners: [\n", "t.yaml:2:1: "},
      {"server:\n  hostname: x\n", "t.yaml:1:1: at least one listener is needed"},
      {std::string(kMinimal) + "  - name: relay\n    address: 127.0.0.1:2526\n",
       "t.yaml:4:5: listener name 'relay' is used twice"},
      {std::string(kMinimal) + "tls:\n  certificate: /nonexistent/cert.pem\n  key: /nonexistent/key.pem\n"
       "  min_version: \"1.1\"\n", "t.yaml:7:16: '1.1' is not one of: 1.2 | 1.3"},
      {std::string(kMinimal) + "delivery_log:\n  retention: 12h\n  file: events.jsonl\n",
       "t.yaml:6:3: delivery_log.file rotates daily, so it cannot keep a delivery_log.retention under 1d"},
      {std::string(kMinimal) + "delivery_log:\n  file: /tmp\n", "t.yaml:5:3: delivery_log.file: '/tmp' is a directory"},
  };
  expect_errors(cases);
}

TEST_CASE("cross-key checks point at the offending key, not its section") {
  struct Case {
    std::string yaml;
    std::string expect;
  } cases[] = {
      {std::string(kMinimal) + "timeouts:\n  data: 5m\n  command: 0s\n",
       "t.yaml:6:3: timeouts.command must be at least 1s"},
      {std::string(kMinimal) + "timeouts: {command: 5m, data: 500ms}\n", "t.yaml:4:25: timeouts.data must be at least 1s"},
      {std::string(kMinimal) + "limits:\n  max_connections: 10\n  max_connections_per_client: 0\n",
       "t.yaml:6:3: limits.max_connections_per_client must be above 0"},
      {std::string(kMinimal) + "limits:\n  max_connections: 0\n", "t.yaml:5:3: limits.max_connections must be above 0"},
      // A value from a default is blamed on the nearest section written.
      {"listeners:\n  - name: a\n    address: 127.0.0.1:25\n    tls: starttls\ntls:\n  key: /k.pem\n",
       "t.yaml:5:1: a listener uses TLS: tls.certificate and tls.key are needed"},
      {"listeners:\n  - name: a\n    address: 127.0.0.1:25\n    auth: optional\n    allow_plaintext_auth: true\n",
       "t.yaml:1:1: a listener offers AUTH: auth.users_file is needed"},
  };
  expect_errors(cases);
}

TEST_CASE("files the config names must be readable regular files") {
  const std::string auth = std::string("listeners:\n  - name: a\n    address: 127.0.0.1:25\n    auth: optional\n"
                                       "    allow_plaintext_auth: true\n");
  struct Case {
    std::string yaml;
    std::string expect;
  } cases[] = {
      // access(R_OK) is true for a directory: this used to pass, and the
      // users file loader then threw std::ios_base::failure at start.
      {auth + "auth:\n  users_file: /tmp\n", "t.yaml:7:3: auth.users_file: '/tmp' is a directory, not a file"},
      {auth + "auth:\n  users_file: /dev/null\n", "t.yaml:7:3: auth.users_file: '/dev/null' is not a regular file"},
      {auth + "auth:\n  users_file: /nonexistent/users.yaml\n",
       "t.yaml:7:3: auth.users_file: cannot read '/nonexistent/users.yaml'"},
      {std::string(kMinimal) + "spool:\n  encryption_key_file: /tmp\n",
       "t.yaml:5:3: spool.encryption_key_file: '/tmp' is a directory"},
      {std::string(kMinimal) + "delivery:\n  routes:\n    - {domain: x.test, host: \"127.0.0.1:25\", password_file: /tmp}\n",
       "t.yaml:6:46: delivery.routes[0].password_file: '/tmp' is a directory"},
  };
  expect_errors(cases);
  // The config file itself: a directory used to read as an empty config.
  auto dir = load_file("/tmp");
  REQUIRE_FALSE(dir.ok());
  CHECK(dir.error().message == "/tmp:1:1: is a directory, not a file");
}

TEST_CASE("where(): each key's FILE:LINE:COL, for errors found after loading") {
  auto c = load_string(std::string(kMinimal) + "timeouts:\n  command: 5m\n", "t.yaml", "/tmp");
  REQUIRE(c.ok());
  CHECK(c->where("timeouts.command") == "t.yaml:5:3");
  CHECK(c->where("timeouts.data") == "t.yaml:4:1");   // a default: its section
  CHECK(c->where("listeners[0].address") == "t.yaml:3:5");
  CHECK(c->where("tls.certificate") == "t.yaml:1:1");  // nothing written
}

TEST_CASE("relative paths resolve against the config file's directory") {
  auto c = load_string(std::string(kMinimal) + "spool:\n  path: ../var/spool\n", "t.yaml", "/etc/ferry");
  REQUIRE(c.ok());
  CHECK(c->spool.path == "/etc/var/spool");
}

TEST_CASE("every key is documented in ferry.yaml.5, and conf/ferry.yaml loads") {
  std::string man = read(FERRY_SOURCE_DIR "/man/ferry.yaml.5");
  REQUIRE_FALSE(man.empty());
  for (const auto& k : all_keys()) {
    CAPTURE(k.path);
    CHECK(man.find(k.path) != std::string::npos);
    CHECK_FALSE(k.doc.empty());
  }
}
