#!/usr/bin/env bash
# Durable webhook intake measured by wrk in its own process, against the release binary.
#
#   tests/load/wrk-ingest.sh [SECONDS] [CONNECTIONS]
#
# Starts `connector-host serve` on 127.0.0.1:18080 with the bundled connectors and a fresh
# data directory, creates an Ecwid instance (store 2000) whose callback accepts connections
# and never answers (so its deliveries queue and the run measures intake alone), then posts
# Ecwid order webhooks with wrk. Every 200 is a notification committed to the SQLite outbox.
# Needs wrk (Debian: `apt-get install wrk`) and python3 (the silent callback). HOST_BIN runs
# another build of the host (for A/B runs of two builds; relative to the repository root),
# and ECWID_WASM another build of the Ecwid connector.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
connections=${2:-64}
port=18080
silent_port=18081

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
cargo build --release -p host --bin connector-host
cargo build --target wasm32-unknown-unknown --profile wasm -p ecwid
work=$(mktemp -d)
mkdir -p "$work/connectors"
cp "${ECWID_WASM:-target/wasm32-unknown-unknown/wasm/ecwid.wasm}" "$work/connectors/ecwid.wasm"

python3 - "$silent_port" <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024); held = []
while True:
    held.append(s.accept()[0])
PY
silent=$!

RUST_LOG=${RUST_LOG:-info} "${HOST_BIN:-target/release/connector-host}" serve --listen 127.0.0.1:$port \
  --connectors "$work/connectors" --data "$work/data" --allow-network 127.0.0.0/8 \
  >"$work/host.log" 2>&1 &
host=$!
trap 'kill $host $silent 2>/dev/null; rm -rf "$work"' EXIT

for _ in $(seq 100); do
  [ -f "$work/data/authorization" ] && curl -sf "http://127.0.0.1:$port/elements/api-v2/elements" >/dev/null && break
  sleep 0.1
done
auth=$(cat "$work/data/authorization")
curl -sf -X POST "http://127.0.0.1:$port/elements/api-v2/instances" \
  -H "authorization: $auth" -H 'content-type: application/json' \
  -d "{\"element\":{\"key\":\"ecwid\"},\"name\":\"load\",\"configuration\":{\"ecwid.store.id\":\"2000\",\"event.notification.enabled\":\"true\",\"event.notification.callback.url\":\"http://127.0.0.1:$silent_port/silent\"}}" >/dev/null

# The host's CPU use over the middle of the run (clock ticks from /proc, 100 per core-second).
(
  sleep $((seconds / 4 + 1))
  a=$(awk '{print $14 + $15}' "/proc/$host/stat")
  sleep $((seconds / 2))
  b=$(awk '{print $14 + $15}' "/proc/$host/stat")
  echo "host CPU over the middle ${seconds}/2 s of the run: $(( (b - a) / (seconds / 2) ))% of one core"
) &
sampler=$!
cpu_before=$(awk '{print $14 + $15}' "/proc/$host/stat")
wrk -t1 -c"$connections" -d"${seconds}s" --latency -s tests/load/ecwid.lua \
  "http://127.0.0.1:$port/elements/api-v2/events/ecwid" -- 2000 | tee "$work/wrk.txt"
cpu_after=$(awk '{print $14 + $15}' "/proc/$host/stat")
wait "$sampler"
if grep -q 'Non-2xx' "$work/wrk.txt"; then
  echo "FAILED: some webhooks were not accepted (see the Non-2xx line above)" >&2
  exit 1
fi
requests=$(awk '/requests in/ { print $1 }' "$work/wrk.txt")
echo "host CPU per accepted webhook: $(( (cpu_after - cpu_before) * 10000 / requests )) µs"
curl -sf "http://127.0.0.1:$port/metrics" | awk '
  /^store_commits_total / { c = $2 } /^store_writes_total / { w = $2 }
  /^webhooks_accepted_total / { a = $2 }
  END { if (c > 0) printf "stored %d webhooks in %d commits: %.1f writes per commit (group commit)\n", a, c, w / c }' || true
echo "host log lines: $(wc -l <"$work/host.log") (one per accepted webhook at RUST_LOG=info)"
