// Loading the users file; see auth_users.h.
#include "auth/auth_users.h"

#include <yaml-cpp/yaml.h>

#include <fmt/format.h>

namespace ferry::auth {

std::shared_ptr<const UserDb> UserDb::from_map(std::unordered_map<std::string, std::string> m) {
  auto db = std::make_shared<UserDb>();
  db->hashes_ = std::move(m);
  return db;
}

Expected<std::shared_ptr<const UserDb>> UserDb::load(const std::string& path) {
  std::unordered_map<std::string, std::string> m;
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (!root.IsNull() && !root.IsMap())
      return Error(Errc::invalid, fmt::format("{}:{}:{}: expected \"name: HASH\" lines", path,
                                              root.Mark().line + 1, root.Mark().column + 1));
    for (auto it = root.begin(); it != root.end(); ++it) {
      auto where = [&](const YAML::Node& n) {
        return fmt::format("{}:{}:{}", path, n.Mark().line + 1, n.Mark().column + 1);
      };
      if (!it->first.IsScalar() || !it->second.IsScalar())
        return Error(Errc::invalid, where(it->first) + ": expected \"name: HASH\"");
      std::string name = it->first.Scalar(), hash = it->second.Scalar();
      if (!supported_hash(hash))
        return Error(Errc::invalid,
                     where(it->second) + ": unsupported or weak hash for '" + name +
                         "' (use argon2id from ferryctl passwd, or yescrypt/bcrypt/sha512-crypt)");
      if (!m.emplace(name, hash).second)
        return Error(Errc::invalid, where(it->first) + ": user '" + name + "' is listed twice");
    }
  } catch (const YAML::BadFile&) {
    return Error(Errc::not_found, fmt::format("{}:1:1: cannot read users file", path));
  } catch (const YAML::Exception& e) {
    return Error(Errc::invalid, fmt::format("{}:{}:{}: {}", path, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  return from_map(std::move(m));
}

bool UserDb::verify(std::string_view user, std::string_view password) const {
  auto it = hashes_.find(std::string(user));
  if (it == hashes_.end()) {
    std::call_once(dummy_once_, [this] {
      auto h = hash_password("unknown user: equal cost");
      dummy_ = h ? *h : "";
    });
    if (!dummy_.empty()) (void)verify_hash(dummy_, password);
    return false;
  }
  return verify_hash(it->second, password);
}

}  // namespace ferry::auth
