// ferryd: argument handling, config loading, and the event loop. Exit codes:
// 0 normal stop or valid config, 1 invalid config or startup failure.
#include <uv.h>

#include <sys/prctl.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "config/config.h"
#include "runtime.h"
#include "server.h"
#include "spool/spool.h"
#include "spool/spool_verify.h"
#include "util/log.h"

namespace {

constexpr const char* kDefaultConfig = "/etc/ferry/ferry.yaml";

void usage(FILE* out) {
  std::fprintf(out,
               "usage: ferryd [-c FILE] [--check-config] [--version]\n"
               "  -c, --config FILE  configuration file (default %s)\n"
               "  --check-config     validate the configuration and exit\n"
               "  --version          print the version and exit\n",
               kDefaultConfig);
}

int run(const std::string& config_path) {
  using namespace ferry;
  auto cfg = config::load_file(config_path);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
    return 1;
  }
  log::configure(cfg->logging.format, cfg->logging.level);
  std::shared_ptr<const spool::Sealer> sealer;
  if (!cfg->spool.encryption_key_file.empty()) {
    auto s = spool::Sealer::load(cfg->spool.encryption_key_file, cfg->spool.previous_key_files);
    if (!s) {
      log::error("ferryd.config", {{"error", s.error().message}});
      return 1;
    }
    sealer = std::make_shared<const spool::Sealer>(std::move(*s));
  }
  if (cfg->spool.sync == config::SyncMode::none)
    log::warn("spool.sync_none", {{"why", "UNSAFE: no fsync; accepted mail is lost on power failure"}});

  // Before any thread exists: the check forks (spool_verify.h).
  auto check = spool::check_spool(cfg->spool.path, {sealer.get(), false, 0});
  if (!check.fatal.empty()) {
    log::error("ferryd.spool_damaged", {{"file", check.file}, {"error", spool::damaged_advice(check, cfg->spool.path)}});
    return 1;
  }
  for (const auto& p : check.problems) log::warn("spool.check", {{"file", check.file}, {"problem", p}});
  auto spool = spool::open_lmdb_spool({cfg->spool.path, cfg->spool.max_size,
                                       cfg->spool.sync == config::SyncMode::full, sealer});
  if (!spool) {
    log::error("ferryd.spool", {{"error", spool.error().message}});
    return 1;
  }
  auto rt = build_runtime(std::move(*cfg));
  if (!rt) {
    log::error("ferryd.config", {{"error", rt.error().message}});
    return 1;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  int rc = 0;
  {
    Server server(&loop, *rt, std::move(*spool));
    if (auto r = server.start(); !r) {
      log::error("ferryd.start", {{"error", r.error().message}});
      server.shutdown();
      rc = 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  // Close whatever is left (nothing, normally) so the loop can be freed.
  uv_walk(&loop, [](uv_handle_t* h, void*) { if (!uv_is_closing(h)) uv_close(h, nullptr); }, nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = kDefaultConfig;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a == "--check-config") {
      check_only = true;
    } else if (a == "--version") {
      std::printf("ferryd %s\n", FERRY_VERSION);
      return 0;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "ferryd: unknown argument '%s'\n", argv[i]);
      usage(stderr);
      return 1;
    }
  }
  if (check_only) {
    auto cfg = ferry::config::load_file(config_path);
    if (!cfg) {
      std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
      return 1;
    }
    // The files it names too: "ok" must mean that start-up will not refuse them.
    if (auto r = ferry::check_runtime(*cfg); !r) {
      std::fprintf(stderr, "%s\n", r.error().message.c_str());
      return 1;
    }
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }
  std::signal(SIGPIPE, SIG_IGN);  // a peer that hangs up must not kill the daemon
  // Message bodies live in this process's memory while they pass through:
  // no core dumps, ever (and no ptrace by other users), so they cannot end
  // up in a crash file. This covers every buffer, not just the ones marked.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  return run(config_path);
}
