#!/usr/bin/env bash
# Mixed load (16 clients, worker models, validators) on a demo county:
#   bench/load.sh [--seconds 30] [--models sync:2,gthread:2x4] …   (bench/load.py --help)
# Scratch databases: geoservice_bench_load* (kept for the next run; drop them when done).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_system
ensure_venv
pg_start >/dev/null
export PATH="$(pg_bindir):$PATH" PGHOST="$(pg_socket_dir)"
exec "$VENV/bin/python" bench/load.py "$@"
