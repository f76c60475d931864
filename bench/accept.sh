#!/bin/bash
# Accept-path benchmark: smtp-source (Postfix's load generator) → ferryd,
# 2 KB messages, N parallel sessions, spool.sync: full. Reports accepted
# messages/s next to this disk's fsync rate and ferryd's messages per spool
# commit, which is the point: group commit lets one fsync carry many
# messages. A second run with spool.sync: none shows the fsync cost.
#
#   sudo bench/accept.sh [SESSIONS] [MESSAGES]      (defaults 20 20000)
#   ENCRYPTION=1 bench/accept.sh [SESSIONS] [MESSAGES]
#       the cost of spool.encryption_key_file: REPS (3) alternating pairs of
#       runs without and with encryption, sync full and none, connection
#       reuse; prints the medians and the encrypted/plain ratio.
#   FERRYD=/path/to/ferryd ...   another build (A/B against an older commit)
#
# Loopback only. Installs postfix with "No configuration" (nothing started)
# for smtp-source. Numbers on a shared VM are noisy: compare within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
SESSIONS=${1:-20}
MESSAGES=${2:-20000}
export DEBIAN_FRONTEND=noninteractive
if [ ! -x /usr/sbin/smtp-source ]; then
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT; }
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends postfix >/dev/null
fi
sh tools/deps.sh
[ -d build ] || meson setup build --buildtype=release >/dev/null
ninja -C build >/dev/null

work=$(mktemp -d /var/tmp/ferry-bench-XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

fsync_rate() {  # 4 KiB overwrite + fdatasync, 3 s: what one LMDB commit costs at least
  python3 - "$work" <<'PY'
import os, sys, time
fd = os.open(os.path.join(sys.argv[1], "fsync.tmp"), os.O_WRONLY | os.O_CREAT, 0o600)
buf, n, t0 = os.urandom(4096), 0, time.time()
while time.time() - t0 < 3:
    os.pwrite(fd, buf, 0); os.fdatasync(fd); n += 1
print(f"{n / (time.time() - t0):.0f}")
PY
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_cell() {  # $1 = sync mode, $2 = extra smtp-source flags, $3 = encryption on|off
  local sync=$1 flags=$2 enc=${3:-off} port dir key="" hold
  port=$(free_port)
  hold=$(free_port)  # nothing listens: delivery defers, the bench measures accepting
  dir="$work/$sync-$enc"
  rm -rf "$dir"; mkdir -p "$dir"
  if [ "$enc" = on ]; then
    openssl rand -hex 32 >"$dir/spool.key"
    key="  encryption_key_file: spool.key"
  fi
  cat >"$dir/ferry.yaml" <<YAML
listeners:
  - name: relay
    address: 127.0.0.1:$port
control:
  socket: control.sock
spool:
  path: spool
  sync: $sync
  max_size: 16GiB
$key
limits:
  max_connections_per_client: 1000
delivery:
  retry: { min_backoff: 1h }
  routes:
    - { domain: "*", host: "127.0.0.1:$hold" }
YAML
  "${FERRYD:-build/daemon/ferryd}" -c "$dir/ferry.yaml" 2>"$dir/ferryd.log" &
  pid=$!
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  local t0 t1
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  /usr/sbin/smtp-source -c -s "$SESSIONS" -l 2048 -m "$MESSAGES" $flags \
    -f bench@src.bench.test -t rcpt@dest.bench.test "127.0.0.1:$port" >/dev/null
  t1=$(date +%s.%N)
  local rss
  rss=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
  # Logged at info by ferryd.stopped: switch level for that line by signal log.
  kill -TERM "$pid"; wait "$pid" || true
  pid=""
  local count commits
  count=$(mdb_stat -s msg "$dir/spool" | awk '/Entries/{print $2}')
  commits=$(grep -oP 'ferryd.stopped .*spool_commits=\K\d+' "$dir/ferryd.log")
  S=$SESSIONS python3 - "$sync" "$flags" "$count" "$t0" "$t1" "$rss" "$commits" "$enc" <<'PY'
import sys, os
sync, flags, count, t0, t1, rss, commits, enc = sys.argv[1:]
secs = float(t1) - float(t0)
print(f"sync={sync:<4} encryption={enc:<3} smtp-source{(' ' + flags) if flags else '   '} sessions={os.environ.get('S')} "
      f"messages={count} seconds={secs:.2f} accepted/s={int(count)/secs:.0f} "
      f"commits/s={int(commits)/secs:.0f} msgs/commit={int(count)/max(1,int(commits)):.1f} "
      f"peak_rss_mb={int(rss)/1024:.0f}")
PY
}

echo "disk fdatasync/s (4 KiB overwrite, $work): $(fsync_rate)"
if [ "${ENCRYPTION:-0}" = 1 ]; then
  out="$work/encryption.txt"
  for _ in $(seq "${REPS:-3}"); do
    for sync in full none; do
      for enc in off on; do run_cell "$sync" "-d" "$enc" | tee -a "$out"; done
    done
  done
  python3 - "$out" <<'PY'
import re, statistics, sys
cells = {}
for line in open(sys.argv[1]):
    f = dict(re.findall(r"(\S+)=(\S+)", line))
    cells.setdefault((f["sync"], f["encryption"]), []).append(float(f["accepted/s"]))
for sync in ("full", "none"):
    off, on = cells[(sync, "off")], cells[(sync, "on")]
    # Each pair ran back to back, so its ratio is the least noisy figure.
    pairs = [b / a for a, b in zip(off, on)]
    print(f"sync={sync}: median accepted/s plain={statistics.median(off):.0f} "
          f"encrypted={statistics.median(on):.0f}; median paired ratio={statistics.median(pairs):.2f} "
          f"(pairs: {' '.join(f'{r:.2f}' for r in pairs)})")
PY
  exit 0
fi
# smtp-source without -d opens a connection per message; -d keeps each
# session's connection for all its messages.
for flags in "" "-d"; do
  run_cell full "$flags"
done
run_cell none ""
