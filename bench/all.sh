#!/usr/bin/env bash
# Every issue-19 figure against its target in one run (see bench/README.md):
#   bench/all.sh [--only items,tiles,reporting,load,replay] [--scale10m] [--full-day] [--list]
# Scratch databases: geoservice_bench_load* (kept for the next run; drop them when done).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_system
ensure_venv
pg_start >/dev/null
export PATH="$(pg_bindir):$PATH" PGHOST="$(pg_socket_dir)"
exec "$VENV/bin/python" bench/targets.py "$@"
