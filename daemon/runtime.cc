// See runtime.h.
#include "runtime.h"

#include <fstream>

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
    if (!ctx) return ctx.error();
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
  for (const auto& r : cfg.delivery.routes) {
    if (r.password_file.empty()) continue;
    std::ifstream in(r.password_file);
    std::string pw;
    if (!in || !std::getline(in, pw))
      return Error(Errc::invalid, "cannot read " + r.password_file + " (delivery.routes password_file)");
    if (!pw.empty() && pw.back() == '\r') pw.pop_back();
    rt->route_passwords[r.host.str()] = pw;
  }
  rt->cfg = std::move(cfg);
  return std::shared_ptr<const Runtime>(std::move(rt));
}

}  // namespace ferry
