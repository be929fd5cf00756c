#!/usr/bin/env bash
# A working day of the county replayed at 10× against gunicorn:
#   bench/replay.sh [--window 08:00-18:00] [--rate 10] …   (bench/replay.py --help)
# Scratch databases: geoservice_bench_load* (kept for the next run; drop them when done).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_system
ensure_venv
pg_start >/dev/null
export PATH="$(pg_bindir):$PATH" PGHOST="$(pg_socket_dir)"
exec "$VENV/bin/python" bench/replay.py "$@"
