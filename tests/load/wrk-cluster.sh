#!/usr/bin/env bash
# Durable webhook intake by several hosts on one PostgreSQL database, measured by wrk.
#
#   tests/load/wrk-cluster.sh [SECONDS] [CONNECTIONS] [HOSTS]
#
# Starts HOSTS (2) `connector-host serve` processes on 127.0.0.1:18080, :18082, … on one
# database, each with its own data directory (the later ones with the first one's
# `authorization` file), creates on the first an Ecwid instance (store 2000) whose callback
# accepts connections and never answers (so the run measures intake alone), waits until
# every host takes its webhooks, then posts Ecwid order webhooks with one wrk whose
# threads (one per host) are spread over the hosts (ecwid-cluster.lua), CONNECTIONS in all.
# Every 200 is a notification committed to PostgreSQL. Reports wrk's numbers, each host's
# accepted webhooks, and the CPU per webhook of the hosts and of the PostgreSQL server.
#
# The database: DATABASE_URL's (an empty database; its server's CPU is not measured), or
# else a private cluster initialized in a temporary directory on 127.0.0.1:18090 with
# PostgreSQL's default durability (fsync and synchronous commit on, as in production;
# PG_DURABLE=0 turns them off, as tests/pg.rs does), stopped and removed at the end. As
# root it runs as the `postgres` user. Needs wrk, python3 (the silent callback) and
# PostgreSQL's server programs (on PATH or in /usr/lib/postgresql/*/bin). HOST_BIN runs
# another build of the host, and ECWID_WASM another build of the Ecwid connector (each
# given is not built).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
connections=${2:-64}
hosts=${3:-2}
silent_port=18081
pg_port=18090

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
[ -n "${HOST_BIN:-}" ] || cargo build --release -p host --bin connector-host
[ -n "${ECWID_WASM:-}" ] || cargo build --target wasm32-unknown-unknown --profile wasm -p ecwid
work=$(mktemp -d)
chmod 755 "$work"
mkdir -p "$work/connectors"
cp "${ECWID_WASM:-target/wasm32-unknown-unknown/wasm/ecwid.wasm}" "$work/connectors/ecwid.wasm"

pids=()
pg_data=
as_pg=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$pg_data" ]; then $as_pg "$pg_bin/pg_ctl" -D "$pg_data" stop -m immediate >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${DATABASE_URL:-}" ]; then
  url=$DATABASE_URL
else
  pg_bin=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
  pg_data=$work/pg
  mkdir -p "$pg_data"
  if [ "$(id -u)" = 0 ]; then
    as_pg="runuser -u postgres --"
    chown postgres: "$pg_data"
  fi
  $as_pg "$pg_bin/initdb" -D "$pg_data" --username=postgres --auth=trust --encoding=UTF8 \
    --locale=C --no-instructions >/dev/null
  {
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $pg_port"
    echo "unix_socket_directories = '$pg_data'"
    echo "max_connections = 200"
    if [ "${PG_DURABLE:-1}" = 0 ]; then
      echo "fsync = off"; echo "synchronous_commit = off"; echo "full_page_writes = off"
    fi
  } >>"$pg_data/postgresql.conf"
  $as_pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_data/log" -w start >/dev/null
  url="postgres://postgres@127.0.0.1:$pg_port/postgres"
fi

python3 - "$silent_port" <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024); held = []
while True:
    held.append(s.accept()[0])
PY
pids+=($!)

# CPU clock ticks (100 per core-second) of the hosts, and of the PostgreSQL server (the
# postmaster's own and its exited children's, plus its live children's).
host_ticks() { for p in "${host_pids[@]}"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | paste -sd+ | bc; }
pg_ticks() {
  [ -n "$pg_data" ] || { echo 0; return; }
  local pm; pm=$(head -1 "$pg_data/postmaster.pid")
  { awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"
    for c in $(ps -o pid= --ppid "$pm"); do awk '{print $14 + $15 + $16 + $17}' "/proc/$c/stat" 2>/dev/null || true; done
  } | paste -sd+ | bc
}

host_pids=()
addrs=()
for i in $(seq 0 $((hosts - 1))); do
  port=$((18080 + 2 * i))
  mkdir -p "$work/data$i"
  if [ "$i" -gt 0 ]; then cp "$work/data0/authorization" "$work/data$i/authorization"; fi
  RUST_LOG=${RUST_LOG:-info} "${HOST_BIN:-target/release/connector-host}" serve --listen 127.0.0.1:$port \
    --connectors "$work/connectors" --data "$work/data$i" --allow-network 127.0.0.0/8 \
    --database-url "$url" >"$work/host$i.log" 2>&1 &
  host_pids+=($!); pids+=($!); addrs+=("127.0.0.1:$port")
  for _ in $(seq 100); do
    [ -f "$work/data$i/authorization" ] && curl -sf "http://127.0.0.1:$port/elements/api-v2/elements" >/dev/null && break
    sleep 0.1
  done
done
auth=$(cat "$work/data0/authorization")
curl -sf -X POST "http://${addrs[0]}/elements/api-v2/instances" \
  -H "authorization: $auth" -H 'content-type: application/json' \
  -d "{\"element\":{\"key\":\"ecwid\"},\"name\":\"load\",\"configuration\":{\"ecwid.store.id\":\"2000\",\"event.notification.enabled\":\"true\",\"event.notification.callback.url\":\"http://127.0.0.1:$silent_port/silent\"}}" >/dev/null
# Every host takes the instance's webhooks before the load starts.
for a in "${addrs[@]}"; do
  for n in $(seq 100); do
    curl -sf -X POST "http://$a/elements/api-v2/events/ecwid" -H 'content-type: application/json' \
      -d "{\"eventId\":\"warm-$a-$n\",\"eventCreated\":1234567,\"storeId\":2000,\"entityId\":103878161,\"eventType\":\"order.created\",\"data\":{\"orderId\":\"warm-$a-$n\",\"oldPaymentStatus\":\"AWAITING_PAYMENT\",\"newPaymentStatus\":\"PAID\"}}" \
      | grep -q notifications && break
    sleep 0.1
  done
done

counter() { curl -sf "http://$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'; }
before=(); dup_before=0
for a in "${addrs[@]}"; do
  before+=("$(counter "$a" webhooks_accepted_total)")
  dup_before=$((dup_before + $(counter "$a" webhooks_duplicate_total)))
done
hosts_before=$(host_ticks); pg_before=$(pg_ticks)
WRK_HOSTS=$(IFS=,; echo "${addrs[*]}") wrk -t"$hosts" -c"$connections" -d"${seconds}s" --latency \
  -s tests/load/ecwid-cluster.lua "http://${addrs[0]}/elements/api-v2/events/ecwid" -- 2000 | tee "$work/wrk.txt"
hosts_after=$(host_ticks); pg_after=$(pg_ticks)
if grep -q 'Non-2xx' "$work/wrk.txt"; then
  echo "FAILED: some webhooks were not accepted (see the Non-2xx line above)" >&2
  exit 1
fi
requests=$(awk '/requests in/ { print $1 }' "$work/wrk.txt")
dups=0
for i in "${!addrs[@]}"; do
  echo "host $i (${addrs[$i]}): $(( $(counter "${addrs[$i]}" webhooks_accepted_total) - before[i] )) webhooks accepted"
  dups=$((dups + $(counter "${addrs[$i]}" webhooks_duplicate_total)))
done
if [ "$dups" -ne "$dup_before" ]; then
  echo "FAILED: $((dups - dup_before)) webhooks were taken for repeats (not notified): the ids are not unique" >&2
  exit 1
fi
echo "hosts' CPU: $(( (hosts_after - hosts_before) * 10000 / requests )) µs per accepted webhook ($(( (hosts_after - hosts_before) / seconds ))% of one core)"
if [ -n "$pg_data" ]; then
  echo "PostgreSQL's CPU: $(( (pg_after - pg_before) * 10000 / requests )) µs per accepted webhook ($(( (pg_after - pg_before) / seconds ))% of one core)"
fi
