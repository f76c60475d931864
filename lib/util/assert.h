// FERRY_ASSERT: for broken invariants (bugs) only. It crashes loudly so that
// systemd restarts a daemon whose spool is still intact; untrusted input and
// environment trouble travel in Expected<T> instead.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FERRY_ASSERT(cond)                                                         \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::fprintf(stderr, "ferry: assertion failed: %s (%s:%d)\n", #cond, __FILE__, \
                   __LINE__);                                                      \
      std::abort();                                                                \
    }                                                                              \
  } while (0)
