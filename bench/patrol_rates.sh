#!/usr/bin/env bash
# 巡查到位率 benchmark: ./bench/patrol_rates.sh [--rebuild]
# Builds (once) a scratch database `geoservice_bench_patrol` with the synthetic county of
# bench/assessment.py and a week of 214,200 patrol tasks, then times 应巡/已巡/到位率 per
# leader, unit and street. Or set BENCH_DATABASE_URL.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_system
ensure_venv
if [ -z "${BENCH_DATABASE_URL:-}" ]; then
  pg_start
  pg_ensure_db geoservice_bench_patrol
  export BENCH_DATABASE_URL="$(local_url geoservice_bench_patrol)"
fi
exec "$VENV/bin/python" -m bench.patrol_rates "$@"
