#!/bin/bash
# End-to-end benchmark: smtp-source → relay → smtp-sink, with the shared
# harness (../shared/bench) that also measures Postfix, OpenSMTPD, Exim and
# chasquid on this machine. Runs the harness ceiling (source → sink
# directly), the chosen peers and ferryd in one go, same cells, and prints
# ferry's throughput as a ratio to each of them, plus ferryd's peak RSS.
#
#   sudo bench/e2e.sh                      # key cell (20 sessions, 2 KB, 10/conn), 3 reps
#   MATRIX=full PEERS="postfix exim4" sudo bench/e2e.sh
#
# ferryd runs with spool.sync: full (fsync before 250, like Postfix) and a
# smarthost route "*" → 127.0.0.1:2600, the harness's smtp-sink.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
[ -x "$SHARED/run.sh" ] || { echo "e2e.sh: no harness at $SHARED" >&2; exit 1; }
export MATRIX=${MATRIX:-key}
PEERS=${PEERS:-postfix}
OUT=${OUT:-$ROOT/bench/results}
mkdir -p "$OUT"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
tsv="$OUT/e2e-$stamp.tsv"

bash "$SHARED/setup-peers.sh" >/dev/null
sh tools/deps.sh
[ -d build ] || meson setup build --buildtype=release >/dev/null
ninja -C build >/dev/null

work=$(mktemp -d /var/tmp/ferry-e2e-XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/ferry.yaml" <<YAML
server:
  hostname: ferry.bench.test
listeners:
  - name: relay
    address: 127.0.0.1:$port
control:
  socket: control.sock
spool:
  path: spool
  sync: full
  max_size: 16GiB
limits:
  max_connections_per_client: 1000
delivery:
  connections_per_destination: 20
  tls: none
  routes:
    - { domain: "*", host: "127.0.0.1:2600" }
logging:
  level: warn
YAML

echo "== ceiling" >&2
bash "$SHARED/run.sh" 2600 ceiling | tee -a "$tsv"
for peer in $PEERS; do
  echo "== $peer" >&2
  bash "$SHARED/peers.sh" start "$peer" >/dev/null
  bash "$SHARED/run.sh" "$(bash "$SHARED/peers.sh" port "$peer")" "$peer" | tee -a "$tsv" || true
  bash "$SHARED/peers.sh" stop "$peer" >/dev/null
done
echo "== ferry" >&2
build/daemon/ferryd -c "$work/ferry.yaml" 2>"$work/ferryd.log" &
pid=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
RELAY_EXE_RE=ferryd bash "$SHARED/run.sh" "$port" ferry | tee -a "$tsv"
kill -TERM "$pid"; wait "$pid" || true; pid=""

python3 - "$tsv" <<'PY'
import collections, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip() and not l.startswith("label")]
cells = collections.defaultdict(lambda: collections.defaultdict(list))
rss = collections.defaultdict(float)
for r in rows:
    label, key = r[0], tuple(r[1:5])
    try:
        acc, e2e = float(r[6]), float(r[7])
    except (ValueError, IndexError):
        continue
    cells[key][label].append((acc, e2e))
    try:
        rss[label] = max(rss[label], float(r[8]))
    except (ValueError, IndexError):
        pass
print("\ncell (sessions size k rcpts)   target      accept/s   e2e/s   ferry e2e ratio")
for key, by in sorted(cells.items()):
    f = by.get("ferry")
    if not f:
        continue
    fe = statistics.median(e for _, e in f)
    for label, vals in sorted(by.items()):
        a = statistics.median(x for x, _ in vals)
        e = statistics.median(y for _, y in vals)
        ratio = f"{fe / e:.2f}x" if label != "ferry" and e > 0 else ""
        print(f"{' '.join(key):30} {label:10} {a:9.0f} {e:8.0f}   {ratio}")
print(f"\nferryd peak RSS: {rss.get('ferry', 0):.0f} MB")
PY
echo "raw: $tsv"
