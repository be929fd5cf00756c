#!/usr/bin/env bash
# Province-scale bench: ./bench/scale.sh [--copies 9] [--runs 3]
# Copies the scale-100 demo database (geoservice_demo100, `seed-demo --scale 100`) into
# geoservice_bench_scale, converts it to monthly partitions (timed), measures items, tiles and
# the weekly ranking, copies the issues back in time to ~10 M (--copies 9) and measures again;
# drops the copy at the end unless KEEP=1. Or set BENCH_DATABASE_URL to a copy of your own.
# Without the demo database: GENERATE=1000000 ./bench/scale.sh (bench/rankings.py's generator
# on an empty database instead of the demo copy).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_system
ensure_venv
if [ -z "${BENCH_DATABASE_URL:-}" ]; then
  pg_start
  pg_psql -d postgres -c "DROP DATABASE IF EXISTS geoservice_bench_scale WITH (FORCE)" >/dev/null
  if [ -n "${GENERATE:-}" ]; then
    pg_psql -d postgres -c "CREATE DATABASE geoservice_bench_scale" >/dev/null
    set -- --generate "$GENERATE" "$@"
  else
    pg_psql -d postgres -c "CREATE DATABASE geoservice_bench_scale TEMPLATE ${DEMO_DATABASE:-geoservice_demo100}" >/dev/null
  fi
  export BENCH_DATABASE_URL="$(local_url geoservice_bench_scale)"
  if [ "${KEEP:-0}" != 1 ]; then
    trap 'pg_psql -d postgres -c "DROP DATABASE IF EXISTS geoservice_bench_scale WITH (FORCE)" >/dev/null' EXIT
  fi
fi
"$VENV/bin/python" -m bench.scale_bench "$@"
