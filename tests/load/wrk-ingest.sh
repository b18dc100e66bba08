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
#
# STORE=postgres runs the host on PostgreSQL instead: a private cluster (initdb in a temporary
# directory, 127.0.0.1:18082 only, durable settings: fsync and synchronous commit on, as the
# SQLite store's synchronous=FULL) and `serve --database-url`. The server's programs come
# from PATH or the newest /usr/lib/postgresql/*/bin; as root the cluster runs as `postgres`.
# PG_CONF adds lines to its postgresql.conf. The CPU of the server's processes (live ones, plus the reaped ones through the
# postmaster's cutime/cstime) is reported beside the host's. The last line, `RESULT …`, is
# for tests/load/wrk-ingest-compare.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
connections=${2:-64}
port=18080
silent_port=18081
pg_port=18082
store=${STORE:-sqlite}
case $store in sqlite|postgres) ;; *) echo "STORE must be sqlite or postgres, not $store" >&2; exit 2 ;; esac

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

store_args=()
pg_ctl=
postmaster=
if [ "$store" = postgres ]; then
  pg_bin=
  for d in $(echo "$PATH" | tr ':' ' ') $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] && { pg_bin=$d; break; }
  done
  [ -n "$pg_bin" ] || { echo "STORE=postgres needs initdb, pg_ctl and postgres (apt-get install postgresql)" >&2; exit 2; }
  as_pg=()
  if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); chown postgres: "$work"; chmod 755 "$work"; fi
  pg_ctl="$pg_bin/pg_ctl"
  "${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg" --username=postgres --auth=trust --encoding=UTF8 \
    --locale=C --no-instructions >"$work/initdb.log" 2>&1
  printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\n" \
    "$pg_port" "$work" >>"$work/pg/postgresql.conf"
  # PG_CONF: more settings for an experiment, e.g. PG_CONF='synchronous_commit = off'.
  [ -z "${PG_CONF:-}" ] || printf '%s\n' "$PG_CONF" >>"$work/pg/postgresql.conf"
  "${as_pg[@]}" "$pg_ctl" -D "$work/pg" -l "$work/pg.log" -w start >/dev/null
  postmaster=$(head -1 "$work/pg/postmaster.pid")
  store_args=(--database-url "postgres://postgres@127.0.0.1:$pg_port/postgres")
fi

RUST_LOG=${RUST_LOG:-info} "${HOST_BIN:-target/release/connector-host}" serve --listen 127.0.0.1:$port \
  --connectors "$work/connectors" --data "$work/data" --allow-network 127.0.0.0/8 \
  "${store_args[@]}" >"$work/host.log" 2>&1 &
host=$!
trap 'kill $host $silent 2>/dev/null; [ -n "$pg_ctl" ] && "${as_pg[@]}" "$pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1; rm -rf "$work"' EXIT

# The PostgreSQL server's CPU so far, in clock ticks: the postmaster with its reaped
# children, and every live child.
pg_ticks() {
  [ -n "$postmaster" ] || { echo 0; return; }
  { awk '{print $14 + $15 + $16 + $17}' "/proc/$postmaster/stat"
    for c in $(cat "/proc/$postmaster/task/"*/children 2>/dev/null); do
      awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null
    done; } | awk '{ t += $1 } END { print t + 0 }'
}

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
pg_before=$(pg_ticks)
wrk -t1 -c"$connections" -d"${seconds}s" --latency -s tests/load/ecwid.lua \
  "http://127.0.0.1:$port/elements/api-v2/events/ecwid" -- 2000 | tee "$work/wrk.txt"
cpu_after=$(awk '{print $14 + $15}' "/proc/$host/stat")
pg_after=$(pg_ticks)
wait "$sampler"
if grep -q 'Non-2xx' "$work/wrk.txt"; then
  echo "FAILED: some webhooks were not accepted (see the Non-2xx line above)" >&2
  exit 1
fi
requests=$(awk '/requests in/ { print $1 }' "$work/wrk.txt")
host_us=$(( (cpu_after - cpu_before) * 10000 / requests ))
pg_us=$(( (pg_after - pg_before) * 10000 / requests ))
echo "host CPU per accepted webhook: $host_us µs"
[ "$store" = postgres ] && echo "PostgreSQL server CPU per accepted webhook: $pg_us µs"
curl -sf "http://127.0.0.1:$port/metrics" | awk '
  /^store_commits_total / { c = $2 } /^store_writes_total / { w = $2 }
  /^webhooks_accepted_total / { a = $2 }
  END { if (c > 0) printf "stored %d webhooks in %d commits: %.1f writes per commit (group commit)\n", a, c, w / c }' || true
echo "host log lines: $(wc -l <"$work/host.log") (one per accepted webhook at RUST_LOG=info)"
rps=$(awk '/^Requests\/sec:/ { print $2 }' "$work/wrk.txt")
echo "RESULT store=$store rps=$rps host_us=$host_us db_us=$pg_us"
