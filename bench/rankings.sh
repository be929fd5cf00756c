#!/usr/bin/env bash
# Ranking benchmark: ./bench/rankings.sh [--issues N] [--leaders N] [--rebuild] [--existing]
# Builds (once) a scratch database `geoservice_bench_rank` (or $BENCH_DB) in the local cluster
# with generated data (it truncates the tables it fills: never point it at a real database),
# then times every grouping's weekly ranking (and its event-scan baseline), the 通报 workbook
# and a published 通报 over HTTP, each against its target with the load average.
# Or set BENCH_DATABASE_URL (--existing: a copy of the demo county, used as it is).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_system
ensure_venv
if [ -z "${BENCH_DATABASE_URL:-}" ]; then
  pg_start
  pg_ensure_db "${BENCH_DB:-geoservice_bench_rank}"
  export BENCH_DATABASE_URL="$(local_url "${BENCH_DB:-geoservice_bench_rank}")"
fi
exec "$VENV/bin/python" -m bench.rankings "$@"
