#!/usr/bin/env bash
# Durable webhook intake on SQLite and on PostgreSQL, interleaved in one sitting.
#
#   tests/load/wrk-ingest-compare.sh [PAIRS] [SECONDS] [CONNECTIONS]
#
# Runs tests/load/wrk-ingest.sh PAIRS times on each store (SQLite, then PostgreSQL, then
# SQLite...), each run a fresh host, data directory and cluster, and prints per store the
# median and range of webhooks/s, of the host's CPU per webhook and of the PostgreSQL
# server's CPU per webhook. Each run's whole output is in the directory it names.
# PG_HOST_BIN_B=<another build of connector-host> adds a third run per round, on PostgreSQL
# with that build (labelled postgres-B), for A/B runs of two builds.
set -euo pipefail
cd "$(dirname "$0")/../.."
pairs=${1:-3}
seconds=${2:-10}
connections=${3:-128}
logs=$(mktemp -d /tmp/wrk-ingest-compare-XXXX)
for i in $(seq "$pairs"); do
  for variant in sqlite postgres ${PG_HOST_BIN_B:+postgres-B}; do
    echo "run $i, $variant" >&2
    out="$logs/$variant-$i.txt"
    if [ "$variant" = postgres-B ]; then
      STORE=postgres HOST_BIN=$PG_HOST_BIN_B tests/load/wrk-ingest.sh "$seconds" "$connections" >"$out" 2>&1 \
        && sed -i 's/^RESULT store=postgres /RESULT store=postgres-B /' "$out"
    else
      STORE=$variant tests/load/wrk-ingest.sh "$seconds" "$connections" >"$out" 2>&1
    fi || { echo "run $i, $variant failed: $out" >&2; exit 1; }
    grep '^RESULT' "$out" >&2
  done
done
cat "$logs"/*.txt | grep '^RESULT' | python3 -c '
import sys, statistics
runs = {}
for line in sys.stdin:
    f = dict(kv.split("=") for kv in line.split()[1:])
    runs.setdefault(f["store"], []).append(f)
for store, rs in sorted(runs.items(), reverse=True):
    def col(k, conv=float):
        v = sorted(conv(r[k]) for r in rs)
        return "median %s (%s-%s)" % (format(statistics.median(v), ",.0f"), format(v[0], ",.0f"), format(v[-1], ",.0f"))
    rps, host, db = col("rps"), col("host_us"), col("db_us")
    print(f"{store:9} {len(rs)} runs: webhooks/s {rps}; host CPU per webhook µs {host}; PostgreSQL CPU per webhook µs {db}")
'
echo "logs: $logs"
