// See spool_space.h.
#include "spool/spool_space.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>

namespace ferry::spool {

FsSpace probe_fs(const std::string& path) {
  struct statvfs sv;
  if (::statvfs(path.c_str(), &sv) != 0) return {};
  return {true, uint64_t(sv.f_blocks) * sv.f_frsize, uint64_t(sv.f_bavail) * sv.f_frsize};
}

uint64_t fs_reserve(uint64_t spool_reserve, uint64_t fs_total) {
  constexpr uint64_t kMin = 256 * 1024;
  return std::max(kMin, std::min(spool_reserve, fs_total / 16));
}

uint64_t insert_room(const FsSpace& fs, uint64_t file_bytes, uint64_t used_bytes) {
  if (!fs.known) return UINT64_MAX;
  uint64_t slack = file_bytes > used_bytes ? file_bytes - used_bytes : 0;
  return fs.avail > UINT64_MAX - slack ? UINT64_MAX : fs.avail + slack;
}

bool failure_is_full(int err, const FsSpace& fs, uint64_t reserve) {
  if (err == ENOSPC || err == EDQUOT) return true;
  return err == EIO && fs.known && fs.avail < reserve;
}

}  // namespace ferry::spool
