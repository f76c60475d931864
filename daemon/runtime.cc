// See runtime.h.
#include "runtime.h"

#include <fstream>

#include "spool/spool_crypto.h"

namespace ferry {

Expected<std::shared_ptr<const Runtime>> build_runtime(config::Config cfg) {
  auto rt = std::make_shared<Runtime>();
  bool tls = false, users = false;
  for (const auto& l : cfg.listeners) {
    tls |= l.tls != config::TlsMode::none;
    users |= l.auth != config::AuthMode::none;
  }
  if (tls) {
    auto ctx = net::TlsContext::server(cfg.tls.certificate, cfg.tls.key, cfg.tls.min_version);
    if (!ctx) {
      // The message names the file OpenSSL refused: blame that key's line.
      const auto& m = ctx.error().message;
      return Error(ctx.error().code, cfg.where(m.rfind("tls.key", 0) == 0 ? "tls.key" : "tls.certificate") + ": " + m);
    }
    rt->tls = *ctx;
  }
  if (users) {
    auto db = auth::UserDb::load(cfg.auth.users_file);
    if (!db) return db.error();
    rt->users = *db;
  }
  if (cfg.delivery.tls != config::OutTls::none) {
    auto ctx = net::TlsContext::client(cfg.tls.min_version);
    if (!ctx) return ctx.error();
    rt->client_tls = *ctx;
  }
  for (size_t i = 0; i < cfg.delivery.routes.size(); ++i) {
    const auto& r = cfg.delivery.routes[i];
    if (r.password_file.empty()) continue;
    // lib/config checked it is a readable regular file; it may have
    // changed since, and getline on a directory fails without throwing.
    std::ifstream in(r.password_file);
    std::string pw;
    if (!in || !std::getline(in, pw))
      return Error(Errc::invalid, cfg.where("delivery.routes[" + std::to_string(i) + "].password_file") +
                                      ": cannot read " + r.password_file + " (delivery.routes password_file)");
    if (!pw.empty() && pw.back() == '\r') pw.pop_back();
    rt->route_passwords[r.host.str()] = pw;
  }
  rt->cfg = std::move(cfg);
  return std::shared_ptr<const Runtime>(std::move(rt));
}

Expected<void> check_runtime(const config::Config& cfg) {
  if (!cfg.spool.encryption_key_file.empty()) {
    auto s = spool::Sealer::load(cfg.spool.encryption_key_file, cfg.spool.previous_key_files);
    if (!s) return Error(s.error().code, cfg.where("spool.encryption_key_file") + ": " + s.error().message);
  }
  auto rt = build_runtime(cfg);
  if (!rt) return rt.error();
  return {};
}

}  // namespace ferry
