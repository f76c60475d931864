// Checking a spool before anything trusts it: ferryd at start and
// `ferryctl spool check`. A damaged LMDB file can make LMDB crash (SIGBUS,
// SIGSEGV) or loop inside the calling process, which no error code can
// report; so the walk runs in a forked child, and a signal, a timeout or a
// missing answer from it is itself the finding. Call check_spool before the
// process starts any thread (fork copies only the calling thread).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "spool/spool_crypto.h"

namespace ferry::spool {

struct CheckOptions {
  const Sealer* sealer = nullptr;  // set: sealed records are opened (AEAD tag checked)
  // Also read every body and check its checksum. Off at start: reading a
  // 20 GB spool would delay every restart by minutes, and a damaged body is
  // caught when delivery reads it (Errc::corrupt → quarantine) anyway.
  bool bodies = false;
  int timeout_s = 0;  // 0: 30 s + 1 s per 64 MiB of data.mdb
};

struct SpoolCheck {
  std::string file;   // PATH/data.mdb
  bool exists = false;  // false: a new spool (only a missing file is one)
  // Why the spool cannot be opened safely; empty when it can. ferryd
  // refuses to start on it.
  std::string fatal;
  // Records that are damaged or inconsistent (first 100; problem_count has
  // them all). ferryd starts: such messages are quarantined when read.
  std::vector<std::string> problems;
  uint64_t problem_count = 0;
  uint64_t messages = 0, bodies = 0, scheduled = 0, pages = 0;
  bool records_unchecked = false;  // sealed records and no key to open them: structure only
  bool ok() const { return fatal.empty() && problem_count == 0; }
};

// In a forked child, bounded by the timeout (see above).
SpoolCheck check_spool(const std::string& dir, const CheckOptions& opts);
// The walk itself, in this process: may crash or hang on a damaged file.
// Only for check_spool's child (and tests of it that fork).
SpoolCheck check_spool_here(const std::string& dir, const CheckOptions& opts);

std::string to_json(const SpoolCheck& c);
// What to tell an admin when the spool is damaged: names the file and the
// ways out (ferryctl spool check, restore, move aside).
std::string damaged_advice(const SpoolCheck& c, const std::string& dir);

}  // namespace ferry::spool
