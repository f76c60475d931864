#!/bin/sh
# Installs what ferry needs to build, run and test on Debian 12. Idempotent:
# apt is only called when a package is missing, so a second run costs nothing.
set -eu
BUILD="meson ninja-build pkg-config g++ libuv1-dev libssl-dev libc-ares-dev liblmdb-dev
  libyaml-cpp-dev libfmt-dev nlohmann-json3-dev zlib1g-dev libsystemd-dev libargon2-dev libcrypt-dev libidn2-dev libmicrohttpd-dev
  doctest-dev openssl"
TEST="lmdb-utils swaks libnet-ssleay-perl libio-socket-ssl-perl curl python3 python3-aiosmtpd dnsmasq-base mandoc
  clang libclang-rt-14-dev systemd"
want="$BUILD"
[ "${1:-}" = "--test" ] && want="$BUILD $TEST"
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing
fi
