#!/usr/bin/env bash
# Who answers for a spot: times GET /api/attribution on the demo county.
#   bench/attribution_preview.sh [--requests N] [--scale S]
# Builds a scratch database in the local cluster with `flask seed-demo` (dropped afterwards),
# or uses BENCH_DATABASE_URL as it is (it must hold data; nothing is written but a bench account).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_system
ensure_venv

scale=1
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

if [ -z "${BENCH_DATABASE_URL:-}" ]; then
  pg_start
  db="geoservice_bench_attribution_$$"
  pg_ensure_db "$db"
  cleanup() {
    pg_psql -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    if [ "$PG_STARTED_HERE" = 1 ]; then pg_stop; fi
  }
  trap cleanup EXIT
  export BENCH_DATABASE_URL="$(local_url "$db")"
  say "loading the demo county (scale $scale)"
  DATABASE_URL="$BENCH_DATABASE_URL" SECRET_KEY=bench FLASK_APP=wsgi "$VENV/bin/flask" db-upgrade
  DATABASE_URL="$BENCH_DATABASE_URL" SECRET_KEY=bench FLASK_APP=wsgi \
    "$VENV/bin/flask" seed-demo --scale "$scale" >/dev/null
fi
"$VENV/bin/python" -m bench.attribution_preview "${args[@]}"
