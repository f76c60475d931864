#!/bin/sh
# lib/smtp, lib/msg and lib/sched are pure: no libuv, OpenSSL, LMDB or
# c-ares. A forbidden include there fails this test.
root=${1:-.}
bad=$(grep -rnE '#include[[:space:]]*[<"](uv\.h|openssl/|lmdb\.h|ares\.h|systemd/)' \
  "$root/lib/smtp" "$root/lib/msg" "$root/lib/sched" "$root/lib/util" 2>/dev/null)
if [ -n "$bad" ]; then
  echo "pure libraries include I/O headers:"
  echo "$bad"
  exit 1
fi
echo "layering ok"
