#!/usr/bin/env bash
# Ranking benchmark: ./bench/rankings.sh [--issues N] [--leaders N] [--rebuild]
# Builds (once) a scratch database `geoservice_bench` in the local cluster with generated data,
# then times the weekly leader ranking and the weekly 通报 export. Or set BENCH_DATABASE_URL.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_system
ensure_venv
if [ -z "${BENCH_DATABASE_URL:-}" ]; then
  pg_start
  pg_ensure_db geoservice_bench
  export BENCH_DATABASE_URL="$(local_url geoservice_bench)"
fi
exec "$VENV/bin/python" -m bench.rankings "$@"
