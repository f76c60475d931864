#!/bin/sh
# meson install into a scratch DESTDIR puts every file where an admin and
# systemd expect it.
set -u
build=$1
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
DESTDIR="$d" meson install -C "$build" --no-rebuild --quiet >/dev/null 2>&1 || { echo "meson install failed"; exit 1; }
missing=0
for f in sbin/ferryd bin/ferryctl lib/systemd/system/ferryd.service lib/sysusers.d/ferry.conf \
         lib/tmpfiles.d/ferry.conf share/man/man8/ferryd.8 share/man/man8/ferryctl.8 \
         share/man/man5/ferry.yaml.5; do
  found=$(find "$d" -path "*/$f" | head -1)
  if [ -z "$found" ]; then echo "not installed: $f"; missing=1; fi
done
find "$d" -name ferry.yaml.example | grep -q . || { echo "not installed: ferry.yaml.example"; missing=1; }
[ $missing -eq 0 ] && echo "install ok"
exit $missing
