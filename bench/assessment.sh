#!/usr/bin/env bash
# Mock-evaluation benchmark: ./bench/assessment.sh [--rebuild]
# Builds (once) a scratch database `geoservice_bench_assessment` with 10,200 sites in 34 kinds,
# 180 standards (15 per site) and one round of 153,000 results, then times scoring and ranking
# and the sites' vector tiles. Or set BENCH_DATABASE_URL.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_system
ensure_venv
if [ -z "${BENCH_DATABASE_URL:-}" ]; then
  pg_start
  pg_ensure_db geoservice_bench_assessment
  export BENCH_DATABASE_URL="$(local_url geoservice_bench_assessment)"
fi
exec "$VENV/bin/python" -m bench.assessment "$@"
