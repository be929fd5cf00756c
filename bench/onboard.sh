#!/usr/bin/env bash
# Streaming import of a large grid file on a scratch database (dropped afterwards):
#   bench/onboard.sh [--grids N] [--batch N]   (see bench/onboard_import.py --help)
# With BENCH_DATABASE_URL set, that database is used instead (its public schema is REBUILT).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_system
ensure_venv

if [ -z "${BENCH_DATABASE_URL:-}" ]; then
  pg_start
  db="geoservice_bench_onboard_$$"
  pg_ensure_db "$db"
  cleanup() {
    pg_psql -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    if [ "$PG_STARTED_HERE" = 1 ]; then pg_stop; fi
  }
  trap cleanup EXIT
  export BENCH_DATABASE_URL="$(local_url "$db")"
fi
"$VENV/bin/python" bench/onboard_import.py "$@"
