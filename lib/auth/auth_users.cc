// Loading the users file; see auth_users.h.
#include "auth/auth_users.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace ferry::auth {

std::shared_ptr<const UserDb> UserDb::from_map(std::unordered_map<std::string, std::string> m) {
  auto db = std::make_shared<UserDb>();
  db->hashes_ = std::move(m);
  return db;
}

namespace {

// Users files are a few lines; this bounds what a wrong path (a log file,
// /dev/zero) costs to read before it is refused.
constexpr size_t kMaxUsersFile = 16 * 1024 * 1024;

// The whole file, or "FILE:1:1: why". Not YAML::LoadFile: yaml-cpp reads
// its stream's buffer directly, so a directory (read(2) fails with EISDIR)
// escapes as std::ios_base::failure instead of an error.
Expected<std::string> read_users_file(const std::string& path) {
  auto fail = [&](Errc code, const std::string& why) {
    return Error(code, fmt::format("{}:1:1: cannot read users file: {}", path, why));
  };
  // O_NONBLOCK: opening a FIFO must not wait for a writer.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fail(errno == ENOENT ? Errc::not_found : Errc::io, std::strerror(errno));
  struct stat st {};
  std::string text;
  Expected<std::string> result = fail(Errc::invalid, "not a regular file");
  if (::fstat(fd, &st) != 0) {
    result = fail(Errc::io, std::strerror(errno));
  } else if (S_ISDIR(st.st_mode)) {
    result = fail(Errc::invalid, "it is a directory");
  } else if (S_ISREG(st.st_mode)) {
    char buf[64 * 1024];
    ssize_t n = 0;
    while (text.size() <= kMaxUsersFile && ((n = ::read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)))
      if (n > 0) text.append(buf, size_t(n));
    if (n < 0) result = fail(Errc::io, std::strerror(errno));
    else if (text.size() > kMaxUsersFile) result = fail(Errc::invalid, "larger than 16 MiB");
    else result = std::move(text);
  }
  ::close(fd);
  return result;
}

}  // namespace

Expected<std::shared_ptr<const UserDb>> UserDb::load(const std::string& path) {
  auto text = read_users_file(path);
  if (!text) return text.error();
  return parse(*text, path);
}

Expected<std::shared_ptr<const UserDb>> UserDb::parse(const std::string& text, const std::string& path) {
  std::unordered_map<std::string, std::string> m;
  try {
    YAML::Node root = YAML::Load(text);
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
  } catch (const YAML::Exception& e) {
    return Error(Errc::invalid, fmt::format("{}:{}:{}: {}", path, e.mark.line + 1, e.mark.column + 1, e.msg));
  } catch (const std::exception& e) {
    // Last resort: this runs at start and on SIGHUP, inside a libuv
    // callback, where an exception would end the daemon.
    return Error(Errc::invalid, fmt::format("{}:1:1: {}", path, e.what()));
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
