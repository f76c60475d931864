// THE table of configuration keys: name, default, documentation, parser.
// man/ferry.yaml.5 must document every path listed here (a test checks it),
// and conf/ferry.yaml shows the common ones with these same defaults.
#include <unistd.h>

#include "config/config_table.h"

namespace ferry::config::detail {
namespace {

using C = Config;
using L = ListenerConfig;
using R = RouteConfig;

std::string default_hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

HostPort get_host_port(const YAML::Node& n, bool require_ip, bool allow_zero) {
  auto hp = parse_host_port(get_string(n), require_ip, allow_zero);
  if (!hp) fail(n, hp.error().message);
  return *hp;
}

template <class T>
void load_list(std::vector<T>& out, const YAML::Node& n, std::span<const Key<T>> table,
               const char* list_name, Ctx& ctx) {
  out.clear();
  if (n.IsNull()) return;
  if (!n.IsSequence()) fail(n, fmt::format("'{}' must be a list", list_name));
  size_t i = 0;
  for (const auto& item : n) {
    T v;
    Ctx item_ctx{ctx.base_dir, {}, fmt::format("{}[{}].", list_name, i)};
    apply_defaults(v, table, item_ctx);
    std::set<std::string> seen;
    load_map(v, item, table, "", item_ctx, seen);
    for (const auto& k : table)
      if (k.def == nullptr && !seen.count(k.path))
        fail(item, fmt::format("{}[{}] needs '{}'", list_name, i, k.path));
    ctx.marks[fmt::format("{}[{}]", list_name, i)] = item.Mark();
    for (auto& [path, mark] : item_ctx.marks) ctx.marks[path] = mark;
    out.push_back(std::move(v));
    ++i;
  }
}

const Key<L> kListenerKeys[] = {
    {"name", nullptr, "Name of the listener, used in logs and metrics. Required, unique.",
     [](L& l, const YAML::Node& n, Ctx&) {
       l.name = get_string(n);
       if (l.name.empty()) fail(n, "listener name must not be empty");
     }},
    {"address", nullptr,
     "IP address and port to listen on: 127.0.0.1:2587, [::1]:2587, 0.0.0.0:587. Port 0 lets the "
     "kernel choose (the bound port is logged). Required.",
     [](L& l, const YAML::Node& n, Ctx&) { l.address = get_host_port(n, true, true); }},
    {"tls", "none",
     "none | starttls (offer STARTTLS, port 587) | implicit (TLS from the first byte, port 465).",
     [](L& l, const YAML::Node& n, Ctx&) {
       l.tls = get_enum<TlsMode>(
           n, {{"none", TlsMode::none}, {"starttls", TlsMode::starttls}, {"implicit", TlsMode::implicit}});
     }},
    {"auth", "none",
     "required: clients must AUTH before MAIL, whatever their address. optional: AUTH is offered; "
     "unauthenticated clients may relay only from relay.trusted_networks. none: AUTH is not offered.",
     [](L& l, const YAML::Node& n, Ctx&) {
       l.auth = get_enum<AuthMode>(
           n, {{"none", AuthMode::none}, {"optional", AuthMode::optional}, {"required", AuthMode::required}});
     }},
    {"proxy_protocol", "false",
     "Expect a PROXY protocol v2 header (HAProxy) before SMTP; the client address is taken from it.",
     [](L& l, const YAML::Node& n, Ctx&) { l.proxy_protocol = get_bool(n); }},
    {"allow_plaintext_auth", "false",
     "Offer AUTH on a connection without TLS. Leave false unless the network path is trusted.",
     [](L& l, const YAML::Node& n, Ctx&) { l.allow_plaintext_auth = get_bool(n); }},
};

const Key<R> kRouteKeys[] = {
    {"domain", nullptr, "Recipient domain this route applies to; \"*\" for every domain (smarthost).",
     [](R& r, const YAML::Node& n, Ctx&) { r.domain = get_string(n); }},
    {"host", nullptr, "host:port to deliver to instead of the domain's MX hosts.",
     [](R& r, const YAML::Node& n, Ctx&) { r.host = get_host_port(n, false, false); }},
    {"username", "null",
     "User name for AUTH PLAIN to the route's host (a smarthost that requires it); needs password_file.",
     [](R& r, const YAML::Node& n, Ctx&) { r.username = n.IsNull() ? "" : get_string(n); }},
    {"password_file", "null",
     "File whose first line is the password for username; kept out of ferry.yaml so the config can be "
     "world-readable.",
     [](R& r, const YAML::Node& n, Ctx& x) { r.password_file = get_path(n, x); }},
};

const Key<C> kConfigKeys[] = {
    {"server.hostname", nullptr,
     "Name used in the greeting, EHLO reply and Received: headers. Default: the system host name.",
     [](C& c, const YAML::Node& n, Ctx&) { c.server.hostname = get_string(n); }},
    {"server.shutdown_timeout", "30s",
     "On SIGTERM, how long open sessions may take to finish before they are closed.",
     [](C& c, const YAML::Node& n, Ctx&) { c.server.shutdown_timeout = get_duration(n); }},
    {"listeners", nullptr, "List of listeners; each has the listeners[] keys below.",
     [](C& c, const YAML::Node& n, Ctx& x) {
       load_list<L>(c.listeners, n, listener_table(), "listeners", x);
     }},
    {"tls.certificate", "null", "PEM certificate chain for listeners with tls: starttls or implicit.",
     [](C& c, const YAML::Node& n, Ctx& x) { c.tls.certificate = get_path(n, x); }},
    {"tls.key", "null", "PEM private key matching tls.certificate.",
     [](C& c, const YAML::Node& n, Ctx& x) { c.tls.key = get_path(n, x); }},
    {"tls.min_version", "\"1.2\"", "Lowest TLS version accepted: \"1.2\" or \"1.3\".",
     [](C& c, const YAML::Node& n, Ctx&) {
       c.tls.min_version = get_enum<std::string>(n, {{"1.2", "1.2"}, {"1.3", "1.3"}});
     }},
    {"auth.users_file", "null",
     "YAML file of \"name: HASH\" lines (argon2id, yescrypt, bcrypt or sha512-crypt; make one with "
     "ferryctl passwd). Needed when a listener has auth other than none.",
     [](C& c, const YAML::Node& n, Ctx& x) { c.auth.users_file = get_path(n, x); }},
    {"auth.failure_delay", "2s", "Delay before the reply to a failed AUTH attempt.",
     [](C& c, const YAML::Node& n, Ctx&) { c.auth.failure_delay = get_duration(n); }},
    {"auth.max_failures", "3", "Failed AUTH attempts in one session before it is disconnected.",
     [](C& c, const YAML::Node& n, Ctx&) { c.auth.max_failures = get_count(n); }},
    {"relay.trusted_networks", "[127.0.0.0/8, \"::1/128\"]",
     "Client networks that may relay without AUTH (on listeners whose auth is not required).",
     [](C& c, const YAML::Node& n, Ctx&) {
       c.relay.trusted_networks.clear();
       if (n.IsNull()) return;
       if (!n.IsSequence()) fail(n, "relay.trusted_networks must be a list of networks");
       for (const auto& item : n) {
         auto cidr = parse_cidr(get_string(item));
         if (!cidr) fail(item, cidr.error().message);
         c.relay.trusted_networks.push_back(*cidr);
       }
     }},
    {"limits.max_message_size", "25MiB", "Largest message accepted (SIZE); larger ones get 552 5.3.4.",
     [](C& c, const YAML::Node& n, Ctx&) { c.limits.max_message_size = get_size(n); }},
    {"limits.max_recipients", "1000", "Recipients per message; more get 452 4.5.3.",
     [](C& c, const YAML::Node& n, Ctx&) { c.limits.max_recipients = get_count(n); }},
    {"limits.max_connections", "10000", "Open client connections in all; more get 421 4.7.0.",
     [](C& c, const YAML::Node& n, Ctx&) { c.limits.max_connections = get_count(n); }},
    {"limits.max_connections_per_client", "100",
     "Open connections per client IP address; more get 421 4.7.0.",
     [](C& c, const YAML::Node& n, Ctx&) { c.limits.max_connections_per_client = get_count(n); }},
    {"limits.max_errors", "10", "Protocol errors in one session before it is disconnected (421 4.7.0).",
     [](C& c, const YAML::Node& n, Ctx&) { c.limits.max_errors = get_count(n); }},
    {"timeouts.command", "5m",
     "Time allowed for one whole command line, counted from when ferry starts waiting for it (the "
     "greeting, the previous reply); bytes trickled in do not extend it (RFC 5321 4.5.3.2.7; Postfix's "
     "smtpd_timeout with smtpd_per_record_deadline). Also bounds a TLS handshake.",
     [](C& c, const YAML::Node& n, Ctx&) { c.timeouts.command = get_duration(n); }},
    {"timeouts.data", "10m",
     "Message content (DATA, each BDAT chunk) may stall this long at most; a client sending slower "
     "than timeouts.min_data_rate uses it up and is disconnected.",
     [](C& c, const YAML::Node& n, Ctx&) { c.timeouts.data = get_duration(n); }},
    {"timeouts.min_data_rate", "500",
     "Bytes per second of message content that earn their time back: each read of N bytes adds "
     "N/min_data_rate seconds to the content deadline, never beyond timeouts.data from now (Postfix's "
     "smtpd_min_data_rate). 0: any read restarts timeouts.data.",
     [](C& c, const YAML::Node& n, Ctx&) { c.timeouts.min_data_rate = get_count(n); }},
    {"timeouts.handshake", "60s",
     "Time from connection to the first accepted MAIL or a successful AUTH: the greeting, EHLO, "
     "STARTTLS and AUTH must all fit in it, however many commands the client sends.",
     [](C& c, const YAML::Node& n, Ctx&) {
       c.timeouts.handshake = get_duration(n);
       if (c.timeouts.handshake.count() < 1000) fail(n, "timeouts.handshake must be at least 1s");
     }},
    {"timeouts.session", "1h",
     "Longest a client connection may last, whatever it does; 0s for no limit. A session past it "
     "gets 421 4.4.2 (a message in transfer is not queued; the client retries it).",
     [](C& c, const YAML::Node& n, Ctx&) {
       c.timeouts.session = get_duration(n);
       if (c.timeouts.session.count() != 0 && c.timeouts.session.count() < 1000)
         fail(n, "timeouts.session must be 0s (no limit) or at least 1s");
     }},
    {"spool.path", "/var/spool/ferry", "Directory of the LMDB spool (created if missing).",
     [](C& c, const YAML::Node& n, Ctx& x) { c.spool.path = get_path(n, x); }},
    {"spool.sync", "full",
     "full: fsync every commit before 250. none: no fsync; UNSAFE, mail is lost on power failure; "
     "for benchmarks only.",
     [](C& c, const YAML::Node& n, Ctx&) {
       c.spool.sync = get_enum<SyncMode>(n, {{"full", SyncMode::full}, {"none", SyncMode::none}});
     }},
    {"spool.encryption_key_file", "null",
     "File with a 256-bit key (32 bytes, or 64 hex digits: openssl rand -hex 32). When set, envelopes, "
     "bodies and delivery-log events are sealed with AES-256-GCM in the spool.",
     [](C& c, const YAML::Node& n, Ctx& x) { c.spool.encryption_key_file = get_path(n, x); }},
    {"spool.previous_key_files", "[]",
     "Older key files: records sealed with them can still be read; new records use encryption_key_file.",
     [](C& c, const YAML::Node& n, Ctx& x) {
       c.spool.previous_key_files.clear();
       if (n.IsNull()) return;
       if (!n.IsSequence()) fail(n, "spool.previous_key_files must be a list of files");
       for (const auto& item : n) c.spool.previous_key_files.push_back(get_path(item, x));
     }},
    {"spool.max_size", "8GiB",
     "Largest size of the spool file. When it is full, new mail gets 452 4.3.1 and queued mail is "
     "still delivered.",
     [](C& c, const YAML::Node& n, Ctx&) { c.spool.max_size = get_size(n); }},
    {"dns.servers", "[]", "DNS servers as host:port; empty means those of /etc/resolv.conf.",
     [](C& c, const YAML::Node& n, Ctx&) {
       c.dns.servers.clear();
       if (n.IsNull()) return;
       if (!n.IsSequence()) fail(n, "dns.servers must be a list of host:port");
       for (const auto& item : n) c.dns.servers.push_back(get_host_port(item, true, false));
     }},
    {"delivery.port", "25", "TCP port used to connect to MX hosts.",
     [](C& c, const YAML::Node& n, Ctx&) {
       auto v = get_count(n);
       if (v == 0 || v > 65535) fail(n, "delivery.port must be 1..65535");
       c.delivery.port = uint16_t(v);
     }},
    {"delivery.connections_per_destination", "20", "Most parallel connections to one destination.",
     [](C& c, const YAML::Node& n, Ctx&) { c.delivery.connections_per_destination = get_count(n); }},
    {"delivery.messages_per_connection", "1000", "Messages sent on one connection before it is closed.",
     [](C& c, const YAML::Node& n, Ctx&) { c.delivery.messages_per_connection = get_count(n); }},
    {"delivery.idle_timeout", "30s", "How long an idle outbound connection is kept for reuse.",
     [](C& c, const YAML::Node& n, Ctx&) { c.delivery.idle_timeout = get_duration(n); }},
    {"delivery.connect_timeout", "30s", "How long a TCP connection to an MX host may take to open.",
     [](C& c, const YAML::Node& n, Ctx&) { c.delivery.connect_timeout = get_duration(n); }},
    {"delivery.tls", "may",
     "none | may (STARTTLS when offered) | encrypt (TLS required) | verify (TLS with a valid "
     "certificate).",
     [](C& c, const YAML::Node& n, Ctx&) {
       c.delivery.tls = get_enum<OutTls>(n, {{"none", OutTls::none},
                                             {"may", OutTls::may},
                                             {"encrypt", OutTls::encrypt},
                                             {"verify", OutTls::verify}});
     }},
    {"delivery.tls_fallback_ttl", "1h",
     "With delivery.tls: may, an MX host whose STARTTLS handshake failed is retried at once "
     "without STARTTLS and then sent plaintext for this long (0: retry at once, remember nothing). "
     "encrypt, verify and routes with a username never fall back.",
     [](C& c, const YAML::Node& n, Ctx&) { c.delivery.tls_fallback_ttl = get_duration(n); }},
    {"delivery.retry.min_backoff", "5m", "Shortest wait before retrying a deferred recipient.",
     [](C& c, const YAML::Node& n, Ctx&) { c.delivery.retry.min_backoff = get_duration(n); }},
    {"delivery.retry.max_backoff", "1h", "Longest wait between retries.",
     [](C& c, const YAML::Node& n, Ctx&) { c.delivery.retry.max_backoff = get_duration(n); }},
    {"delivery.retry.max_lifetime", "5d",
     "Age at which an undelivered recipient expires and its sender gets a DSN.",
     [](C& c, const YAML::Node& n, Ctx&) { c.delivery.retry.max_lifetime = get_duration(n); }},
    {"delivery.routes", "[]", "Routes that bypass MX lookup; each has the routes[] keys below.",
     [](C& c, const YAML::Node& n, Ctx& x) {
       load_list<R>(c.delivery.routes, n, route_table(), "delivery.routes", x);
     }},
    {"delivery_log.retention", "90d", "How long delivery-log events are kept before they are purged.",
     [](C& c, const YAML::Node& n, Ctx&) { c.delivery_log.retention = get_duration(n); }},
    {"delivery_log.subject", "true", "Record the Subject: header in delivery-log events.",
     [](C& c, const YAML::Node& n, Ctx&) { c.delivery_log.subject = get_bool(n); }},
    {"delivery_log.file", "null",
     "Also append every committed delivery-log event as one JSON line to this file, for log shippers. "
     "ferryd renames it to FILE.YYYY-MM-DD at UTC midnight and deletes a rotated file once the start of "
     "its day is older than delivery_log.retention (which must then be at least 1d); SIGUSR1 reopens "
     "it. The file is plaintext: spool encryption does not cover it.",
     [](C& c, const YAML::Node& n, Ctx& x) { c.delivery_log.file = get_path(n, x); }},
    {"suppression.auto", "true",
     "Add a recipient to the suppression list when it hard-bounces (5.1.x: no such mailbox or domain); "
     "later submissions to it are refused at RCPT with 550 5.7.1.",
     [](C& c, const YAML::Node& n, Ctx&) { c.suppression.automatic = get_bool(n); }},
    {"rate_limits.interval", "1h", "The interval of the message and recipient limits below.",
     [](C& c, const YAML::Node& n, Ctx&) { c.rate_limits.interval = get_duration(n); }},
    {"rate_limits.messages_per_user", "0",
     "Messages an authenticated user may send per interval (0: no limit); more get 450 4.7.1.",
     [](C& c, const YAML::Node& n, Ctx&) { c.rate_limits.messages_per_user = get_count(n); }},
    {"rate_limits.recipients_per_user", "0", "Recipients per interval for an authenticated user (0: no limit).",
     [](C& c, const YAML::Node& n, Ctx&) { c.rate_limits.recipients_per_user = get_count(n); }},
    {"rate_limits.messages_per_client", "0",
     "Messages per interval from one client address without AUTH (0: no limit); more get 450 4.7.1.",
     [](C& c, const YAML::Node& n, Ctx&) { c.rate_limits.messages_per_client = get_count(n); }},
    {"rate_limits.recipients_per_client", "0", "Recipients per interval from one client address without AUTH.",
     [](C& c, const YAML::Node& n, Ctx&) { c.rate_limits.recipients_per_client = get_count(n); }},
    {"rate_limits.connections_per_minute", "0",
     "New connections per minute from one client address (0: no limit); more get 421 4.7.0.",
     [](C& c, const YAML::Node& n, Ctx&) { c.rate_limits.connections_per_minute = get_count(n); }},
    {"rate_limits.auth_failures", "10",
     "Failed AUTH attempts from one address within auth_lockout before it is locked out for auth_lockout "
     "(421 4.7.0); 0 disables the lockout.",
     [](C& c, const YAML::Node& n, Ctx&) { c.rate_limits.auth_failures = get_count(n); }},
    {"rate_limits.auth_lockout", "15m", "The window and the duration of the AUTH-failure lockout.",
     [](C& c, const YAML::Node& n, Ctx&) { c.rate_limits.auth_lockout = get_duration(n); }},
    {"control.socket", "/run/ferry/control.sock", "Unix socket that ferryctl talks to.",
     [](C& c, const YAML::Node& n, Ctx& x) { c.control.socket = get_path(n, x); }},
    {"metrics.address", "null", "host:port for GET /metrics (Prometheus text); null disables it.",
     [](C& c, const YAML::Node& n, Ctx&) {
       if (n.IsNull())
         c.metrics.address.reset();
       else
         c.metrics.address = get_host_port(n, true, true);
     }},
    {"logging.format", "text", "text (key=value) or json: one line per event on stderr.",
     [](C& c, const YAML::Node& n, Ctx&) {
       c.logging.format = get_enum<log::Format>(n, {{"text", log::Format::text}, {"json", log::Format::json}});
     }},
    {"logging.level", "info", "debug | info | warn | error.",
     [](C& c, const YAML::Node& n, Ctx&) {
       c.logging.level = get_enum<log::Level>(n, {{"debug", log::Level::debug},
                                                  {"info", log::Level::info},
                                                  {"warn", log::Level::warn},
                                                  {"error", log::Level::error}});
     }},
};

}  // namespace

std::span<const Key<Config>> config_table() { return kConfigKeys; }
std::span<const Key<ListenerConfig>> listener_table() { return kListenerKeys; }
std::span<const Key<RouteConfig>> route_table() { return kRouteKeys; }

void apply_dynamic_defaults(Config& c) {
  if (c.server.hostname.empty()) c.server.hostname = default_hostname();
}

}  // namespace ferry::config::detail

namespace ferry::config {

std::vector<KeyDoc> all_keys() {
  std::vector<KeyDoc> out;
  auto add = [&](std::string prefix, const auto& table) {
    for (const auto& k : table) out.push_back({prefix + k.path, k.def ? k.def : "", k.doc});
  };
  add("", detail::config_table());
  add("listeners[].", detail::listener_table());
  add("delivery.routes[].", detail::route_table());
  return out;
}

}  // namespace ferry::config
