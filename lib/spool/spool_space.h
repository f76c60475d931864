// Free space as the filesystem under spool.path sees it (statvfs), beside
// LMDB's own spool.max_size accounting in spool_lmdb.cc: a spool whose map
// is far from full can still sit on a full disk. The arithmetic is pure;
// probe_fs is the only call that touches the system. No LMDB here.
#pragma once

#include <cstdint>
#include <string>

namespace ferry::spool {

struct FsSpace {
  bool known = false;  // false: statvfs failed; nothing is refused on a guess
  uint64_t total = 0;  // f_blocks * f_frsize
  uint64_t avail = 0;  // f_bavail * f_frsize: what a non-root writer may still use
};

FsSpace probe_fs(const std::string& path);

// What inserts leave free on the filesystem for updates and deletes (they
// drain the spool, and copy-on-write needs fresh pages even to delete):
// the spool.max_size reserve, but never more than 1/16 of the filesystem,
// so a small filesystem under a large max_size still accepts mail; and at
// least 256 KiB, room for many small deletes.
uint64_t fs_reserve(uint64_t spool_reserve, uint64_t fs_total);

// Bytes new messages may take before the reserve: free space on the
// filesystem plus the pages the data file already holds but does not use
// (LMDB reuses those before it grows the file, and the file never shrinks,
// so without them a drained spool would stay "full" forever).
uint64_t insert_room(const FsSpace& fs, uint64_t file_bytes, uint64_t used_bytes);

// Whether a failed write is a full filesystem: ENOSPC and EDQUOT, and EIO
// when the filesystem is (nearly) full, because LMDB 0.9 reports a short
// write as EIO ("short write, filesystem full?" in mdb_page_flush).
bool failure_is_full(int err, const FsSpace& fs, uint64_t reserve);

}  // namespace ferry::spool
