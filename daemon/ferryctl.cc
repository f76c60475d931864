// ferryctl: the admin CLI. `passwd` and `spool check` work offline (the
// latter reads the spool read-only, daemon running or not); every other
// command is one JSON request over the control socket of a running ferryd
// (see control.h). Tables for people by default, --json for scripts. Exit
// status: 0 ok, 1 the daemon refused or failed, 2 usage, 3 no daemon.
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include "auth/auth_users.h"
#include "config/config.h"
#include "spool/spool_verify.h"
#include "util/json_fields.h"

using nlohmann::json;

namespace {

constexpr const char* kDefaultConfig = "/etc/ferry/ferry.yaml";

void usage(FILE* out) {
  std::fprintf(out,
               "usage: ferryctl [-c FILE | -s SOCKET] COMMAND\n"
               "commands:\n"
               "  status                           daemon, listeners, queue and counters\n"
               "  reload                           re-read the configuration (like SIGHUP)\n"
               "  queue summary [--json]           per destination: messages, oldest, last error\n"
               "  queue list [--json]              every queued message\n"
               "  queue show ID                    one message's envelope (never its body)\n"
               "  queue flush [ID | --domain D]    retry deferred mail now\n"
               "  queue delete ID                  remove a message\n"
               "  queue bounce ID                  return a message to its sender (DSN)\n"
               "  log search --address A [--since T] [--json]\n"
               "                                   delivery-log events of one address;\n"
               "                                   T: YYYY-MM-DD or an age like 7d, 12h\n"
               "  privacy export --address A       JSON of everything held about A\n"
               "  privacy erase --address A [--keep-suppression]\n"
               "                                   delete A's log events, drop A from queued mail\n"
               "  suppress add ADDRESS [--reason TEXT] | remove ADDRESS | list [--json]\n"
               "  passwd                           read a password, print an argon2id hash\n"
               "  spool check [--bodies] [--json]  verify the spool files (daemon running or not);\n"
               "                                   --bodies also checks every body's checksum\n");
}

bool read_password(const char* prompt, std::string& out) {
  bool tty = isatty(STDIN_FILENO);
  termios old{};
  if (tty) {
    std::fprintf(stderr, "%s", prompt);
    tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~tcflag_t(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  bool ok = bool(std::getline(std::cin, out));
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    std::fprintf(stderr, "\n");
  }
  return ok;
}

int cmd_passwd() {
  std::string pw, again;
  if (!read_password("Password: ", pw)) {
    std::fprintf(stderr, "ferryctl: no password given\n");
    return 1;
  }
  if (isatty(STDIN_FILENO) && (!read_password("Again: ", again) || again != pw)) {
    std::fprintf(stderr, "ferryctl: passwords do not match\n");
    return 1;
  }
  if (pw.empty()) {
    std::fprintf(stderr, "ferryctl: empty password refused\n");
    return 1;
  }
  auto h = ferry::auth::hash_password(pw);
  OPENSSL_cleanse(pw.data(), pw.size());
  OPENSSL_cleanse(again.data(), again.size());
  if (!h) {
    std::fprintf(stderr, "ferryctl: %s\n", h.error().message.c_str());
    return 1;
  }
  std::printf("%s\n", h->c_str());
  return 0;
}

// Sends one request; returns the daemon's answer or exits 3 when no
// daemon listens there.
json call(const std::string& socket_path, const json& request) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof sa.sun_path) {
    std::fprintf(stderr, "ferryctl: socket path too long: %s\n", socket_path.c_str());
    std::exit(2);
  }
  std::memcpy(sa.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::fprintf(stderr, "ferryctl: cannot reach ferryd at %s: %s\n", socket_path.c_str(), std::strerror(errno));
    std::exit(3);
  }
  // replace: an argument that is not UTF-8 must not throw out of dump().
  std::string out = request.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  for (size_t off = 0; off < out.size();) {
    ssize_t n = ::write(fd, out.data() + off, out.size() - off);
    if (n <= 0) {
      std::fprintf(stderr, "ferryctl: write: %s\n", std::strerror(errno));
      std::exit(3);
    }
    off += size_t(n);
  }
  std::string in;
  char buf[64 * 1024];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) in.append(buf, size_t(n));
  ::close(fd);
  json j = json::parse(in, nullptr, false);
  if (!j.is_object()) {
    std::fprintf(stderr, "ferryctl: malformed answer from ferryd\n");
    std::exit(1);
  }
  return j;
}

std::string socket_from(const std::string& config_path, bool explicit_config) {
  if (!explicit_config && ::access(config_path.c_str(), R_OK) != 0) return "/run/ferry/control.sock";
  auto cfg = ferry::config::load_file(config_path);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
    std::exit(2);
  }
  return cfg->control.socket;
}

int64_t parse_since(const std::string& t) {
  auto d = ferry::config::parse_duration(t);
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  if (d) return now - d->count();
  std::tm tm{};
  if (strptime(t.c_str(), "%Y-%m-%d", &tm) == nullptr) {
    std::fprintf(stderr, "ferryctl: --since takes YYYY-MM-DD or an age like 7d\n");
    std::exit(2);
  }
  return int64_t(timegm(&tm)) * 1000;
}

void table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(head.size());
  for (size_t i = 0; i < head.size(); ++i) w[i] = head[i].size();
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], std::min<size_t>(r[i].size(), 60));
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (size_t i = 0; i < r.size(); ++i) {
      std::string cell = r[i].size() > 60 ? r[i].substr(0, 57) + "..." : r[i];
      s += cell;
      if (i + 1 < r.size()) s += std::string(w[i] - cell.size() + 2, ' ');
    }
    std::printf("%s\n", s.c_str());
  };
  line(head);
  for (const auto& r : rows) line(r);
}

// The answer is read field by field without trusting its shape: operator[]
// on a missing key of a const object is undefined, get<>() throws.
std::string field(const json& obj, const char* key) {
  return obj.is_object() && obj.contains(key) ? ferry::json_field::text(obj[key]) : std::string();
}

std::string dump(const json& j, int indent = -1) { return j.dump(indent, ' ', false, json::error_handler_t::replace); }

// `spool check`: the same verification ferryd runs at start, on the
// spool.path of the config. Exit 0 when sound, 1 when damaged or when
// records have problems.
int cmd_spool_check(const std::string& config_path, bool as_json, bool bodies) {
  auto cfg = ferry::config::load_file(config_path);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
    return 2;
  }
  std::unique_ptr<ferry::spool::Sealer> sealer;
  if (!cfg->spool.encryption_key_file.empty()) {
    auto s = ferry::spool::Sealer::load(cfg->spool.encryption_key_file, cfg->spool.previous_key_files);
    if (s)
      sealer = std::make_unique<ferry::spool::Sealer>(std::move(*s));
    else
      std::fprintf(stderr, "ferryctl: %s; checking the structure only\n", s.error().message.c_str());
  }
  auto c = ferry::spool::check_spool(cfg->spool.path, {sealer.get(), bodies, 0});
  if (as_json) {
    std::printf("%s\n", ferry::spool::to_json(c).c_str());
    return c.ok() ? 0 : 1;
  }
  if (!c.exists) {
    std::printf("ok: %s does not exist yet (a new spool)\n", c.file.c_str());
    return 0;
  }
  if (!c.fatal.empty()) {
    std::printf("damaged: %s: %s\n", c.file.c_str(), c.fatal.c_str());
    std::printf("ferryd will not start on it. Restore %s from a backup, or move it aside to start with an "
                "empty spool.\n",
                cfg->spool.path.c_str());
    return 1;
  }
  std::printf("%s: %s: %llu messages, %llu bodies, %llu scheduled, %llu pages%s%s\n",
              c.ok() ? "ok" : "problems", c.file.c_str(), (unsigned long long)c.messages,
              (unsigned long long)c.bodies, (unsigned long long)c.scheduled, (unsigned long long)c.pages,
              bodies ? ", every body checksum verified" : "",
              c.records_unchecked ? " (records are sealed and no key was given: structure only)" : "");
  for (const auto& p : c.problems) std::printf("  %s\n", p.c_str());
  if (c.problem_count > c.problems.size())
    std::printf("  ... and %llu more\n", (unsigned long long)(c.problem_count - c.problems.size()));
  return c.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = kDefaultConfig, socket_path;
  bool explicit_config = false;
  std::vector<std::string> words;
  bool as_json = false;
  std::string address, since, domain, reason;
  bool keep_suppression = false, bodies = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "ferryctl: %s needs a value\n", name);
        std::exit(2);
      }
      return std::string(argv[++i]);
    };
    if (a == "-c") {
      config_path = value("-c");
      explicit_config = true;
    } else if (a == "-s") {
      socket_path = value("-s");
    } else if (a == "--json") {
      as_json = true;
    } else if (a == "--address") {
      address = value("--address");
    } else if (a == "--since") {
      since = value("--since");
    } else if (a == "--domain") {
      domain = value("--domain");
    } else if (a == "--reason") {
      reason = value("--reason");
    } else if (a == "--keep-suppression") {
      keep_suppression = true;
    } else if (a == "--bodies") {
      bodies = true;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "ferryctl: unknown option '%s'\n", a.c_str());
      return 2;
    } else {
      words.push_back(a);
    }
  }
  if (words.empty()) {
    usage(stderr);
    return 2;
  }
  std::string cmd = words[0];
  if (cmd == "passwd") return cmd_passwd();
  if (cmd == "spool") {
    if (words.size() != 2 || words[1] != "check") {
      std::fprintf(stderr, "ferryctl: usage: spool check [--bodies] [--json]\n");
      return 2;
    }
    return cmd_spool_check(config_path, as_json, bodies);
  }

  json req;
  if ((cmd == "queue" || cmd == "log" || cmd == "privacy" || cmd == "suppress") && words.size() >= 2)
    cmd += "." + words[1];
  size_t argn = cmd.find('.') == std::string::npos ? 1 : 2;
  std::string id = words.size() > argn ? words[argn] : "";
  req["cmd"] = cmd;
  req["args"] = json::object();
  if (cmd == "queue.show" || cmd == "queue.delete" || cmd == "queue.bounce") {
    if (id.empty()) {
      std::fprintf(stderr, "ferryctl: %s needs a message ID\n", cmd.c_str());
      return 2;
    }
    req["args"]["id"] = id;
  } else if (cmd == "queue.flush") {
    if (!id.empty()) req["args"]["id"] = id;
    if (!domain.empty()) req["args"]["domain"] = domain;
  } else if (cmd == "log.search") {
    if (address.empty()) {
      std::fprintf(stderr, "ferryctl: log search needs --address\n");
      return 2;
    }
    req["args"]["address"] = address;
    if (!since.empty()) req["args"]["since_ms"] = parse_since(since);
  } else if (cmd == "privacy.export" || cmd == "privacy.erase") {
    if (address.empty()) {
      std::fprintf(stderr, "ferryctl: %s needs --address\n", cmd.c_str());
      return 2;
    }
    req["args"]["address"] = address;
    if (keep_suppression) req["args"]["keep_suppression"] = true;
  } else if (cmd == "suppress.add" || cmd == "suppress.remove") {
    if (id.empty()) {
      std::fprintf(stderr, "ferryctl: %s needs an ADDRESS\n", cmd.c_str());
      return 2;
    }
    req["args"]["address"] = id;
    if (!reason.empty()) req["args"]["reason"] = reason;
  } else if (cmd != "status" && cmd != "reload" && cmd != "queue.summary" && cmd != "queue.list" &&
             cmd != "suppress.list") {
    std::fprintf(stderr, "ferryctl: unknown command '%s'\n", cmd.c_str());
    usage(stderr);
    return 2;
  }
  if (socket_path.empty()) socket_path = socket_from(config_path, explicit_config);

  json resp = call(socket_path, req);
  if (resp["ok"] != true) {
    std::fprintf(stderr, "ferryctl: %s\n", ferry::json_field::string_or(resp, "error", "failed").c_str());
    return 1;
  }
  const json& r = resp["result"];
  if (cmd == "log.search" && as_json) {
    for (const auto& ev : r) std::printf("%s\n", dump(ev).c_str());  // one object per line
    return 0;
  }
  if (as_json || cmd == "status" || cmd == "queue.show" || cmd == "privacy.export" || cmd == "privacy.erase") {
    std::printf("%s\n", dump(r, as_json ? -1 : 2).c_str());
    return 0;
  }
  if (cmd == "queue.summary") {
    std::vector<std::vector<std::string>> rows;
    for (const auto& d : r)
      rows.push_back({field(d, "destination"), field(d, "messages"), field(d, "recipients"),
                      field(d, "oldest_age_s") + "s", field(d, "last_error")});
    table({"DESTINATION", "MESSAGES", "RCPTS", "OLDEST", "LAST ERROR"}, rows);
  } else if (cmd == "queue.list") {
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : r) {
      std::string rcpts;
      if (m.is_object() && m.contains("rcpts") && m["rcpts"].is_array())
        for (const auto& x : m["rcpts"]) rcpts += (rcpts.empty() ? "" : ",") + ferry::json_field::text(x);
      rows.push_back({field(m, "id"), field(m, "from").empty() ? "<>" : field(m, "from"), rcpts, field(m, "size"),
                      field(m, "next_attempt"), field(m, "last_error")});
    }
    table({"ID", "FROM", "TO", "SIZE", "NEXT ATTEMPT", "LAST ERROR"}, rows);
  } else if (cmd == "suppress.list") {
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : r) rows.push_back({field(e, "address"), field(e, "ts"), field(e, "reason")});
    table({"ADDRESS", "SINCE", "REASON"}, rows);
  } else if (cmd == "log.search") {
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : r)
      rows.push_back({field(e, "ts"), field(e, "event"), field(e, "id"), field(e, "from"), field(e, "rcpt"),
                      field(e, "response")});
    table({"TIME", "EVENT", "ID", "FROM", "RCPT", "RESPONSE"}, rows);
  } else {
    std::printf("%s\n", dump(r).c_str());
  }
  return 0;
}
