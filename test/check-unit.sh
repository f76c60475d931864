#!/bin/sh
# systemd-analyze verify on systemd/ferryd.service, with ExecStart pointed
# at the binary just built (the installed path does not exist in a build
# tree) and man-page lookups off (the pages are not installed here either).
set -u
src=$1
ferryd=$2
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not installed: skipped"; exit 77; }
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
sed "s|/usr/sbin/ferryd|$ferryd|g" "$src/systemd/ferryd.service" >"$d/ferryd.service"
out=$(systemd-analyze verify --man=no "$d/ferryd.service" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] && [ -z "$out" ]
