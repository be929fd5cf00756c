# Shared set-up steps for scripts/run and scripts/test. Every step is idempotent.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PGHOME="$ROOT/.pg"
INSTANCE="$ROOT/.instance"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run: $* (install it or run as root)"; fi
}

apt_updated=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "missing system packages ($*) and no apt-get to install them"
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  say "installing system packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Newest PostgreSQL bin dir that has PostGIS installed (empty if none).
pg_bindir() {
  local dir ver
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
    ver="$(basename "$(dirname "$dir")")"
    if ls /usr/share/postgresql/"$ver"/extension/postgis.control >/dev/null 2>&1; then
      echo "$dir"; return 0
    fi
  done
}

ensure_system() {
  local pkgs=()
  command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || pkgs+=(python3-venv)
  command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
  # A Chinese font: photo watermarks (place names) and the browser tests' screenshots.
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || pkgs+=(fonts-wqy-microhei)
  [ ${#pkgs[@]} -eq 0 ] || apt_install "${pkgs[@]}"
  if [ -z "$(pg_bindir)" ]; then
    if [ ! -d /usr/lib/postgresql ] || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
      apt_install postgresql-common
      # The distribution's default server version, e.g. 15 on Debian 12, 16 on Ubuntu 24.04.
      local ver
      ver="$(apt-cache depends postgresql 2>/dev/null | sed -n 's/.*Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n1)"
      [ -n "$ver" ] || die "cannot tell the distribution's PostgreSQL version"
      apt_install "postgresql-$ver" "postgresql-$ver-postgis-3"
    else
      local ver
      ver="$(ls /usr/lib/postgresql | sort -n | tail -n1)"
      apt_install "postgresql-$ver-postgis-3"
    fi
  fi
  [ -n "$(pg_bindir)" ] || die "PostGIS did not install"
}

# Headless Chromium for the map tests (large: only the test command asks for it). Without it
# those tests are skipped with the reason.
ensure_chromium() {
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 && return 0
  apt_install chromium || say "chromium could not be installed: the browser tests will be skipped"
}

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtualenv in .venv"
    python3 -m venv "$VENV"
  fi
  local want
  want="$(stamp_of "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt")"
  if [ "$(cat "$VENV/.requirements-stamp" 2>/dev/null)" != "$want" ]; then
    say "installing pinned Python requirements"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements-dev.txt"
    echo "$want" >"$VENV/.requirements-stamp"
  fi
}

ensure_assets() {
  local want
  want="$(stamp_of "$ROOT/package.json" "$ROOT/package-lock.json")"
  if [ "$(cat "$ROOT/node_modules/.assets-stamp" 2>/dev/null)" != "$want" ]; then
    say "installing pinned front-end assets (npm ci)"
    (cd "$ROOT" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
    echo "$want" >"$ROOT/node_modules/.assets-stamp"
  fi
}

# --- the project-local PostGIS cluster ------------------------------------------------------
# Data and socket live in .pg/ (git-ignored). PostgreSQL refuses to run as root, so as root the
# cluster belongs to the `postgres` system user; when that user cannot reach the project folder
# (e.g. a clone under /root) the cluster lives in /var/tmp and .pg is a symlink to it.
# It listens on its Unix socket only, so several checkouts never fight over a TCP port.

pg_user() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }

pg_run() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

pg_prepare_home() {
  [ -e "$PGHOME" ] && return 0
  if [ "$(id -u)" = 0 ]; then
    if runuser -u postgres -- test -x "$ROOT"; then
      mkdir -p "$PGHOME"
    else
      local alt
      alt="/var/tmp/geoservice-pg-$(echo "$ROOT" | sha256sum | cut -c1-12)"
      mkdir -p "$alt"
      ln -s "$alt" "$PGHOME"
    fi
    chown postgres: "$(readlink -f "$PGHOME")"
  else
    mkdir -p "$PGHOME"
  fi
}

pg_socket_dir() { readlink -f "$PGHOME"/run; }

# shared_buffers of the local cluster: PG_SHARED_BUFFERS (e.g. 2GB), else a quarter of the
# machine's memory between 128MB and 4GB (PostgreSQL's usual advice; 256MB read ~5 % of the demo
# county's pages from the OS cache under the mixed load: docs/performance.md). Applied at start:
# `scripts/pg stop && scripts/pg start` after changing it.
pg_shared_buffers() {
  if [ -n "${PG_SHARED_BUFFERS:-}" ]; then echo "$PG_SHARED_BUFFERS"; return; fi
  local kb limit mb
  kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null || echo 1048576)
  limit=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || echo max)  # a container's own limit
  if [[ "$limit" =~ ^[0-9]+$ ]] && [ $((limit / 1024)) -lt "$kb" ]; then kb=$((limit / 1024)); fi
  mb=$((kb / 4096))
  [ "$mb" -lt 128 ] && mb=128
  [ "$mb" -gt 4096 ] && mb=4096
  echo "${mb}MB"
}

PG_STARTED_HERE=0
# wal_buffers (PG_WAL_BUFFERS, else 64MB): PostgreSQL's automatic value stops at 16MB, which two
# connections attributing 50,000-issue batches fill (each batch writes ~140 MB of WAL): the
# backends then write WAL themselves and wait on each other's writes (docs/performance.md,
# "December 5, seventeenth session").
pg_start() {
  local bindir
  bindir="$(pg_bindir)"
  pg_prepare_home
  local home
  home="$(readlink -f "$PGHOME")"
  if [ ! -f "$home/data/PG_VERSION" ]; then
    say "initialising the local PostGIS cluster in .pg/"
    pg_run "$bindir/initdb" -D "$home/data" -U geoservice --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    pg_run mkdir -p "$home/run"
  fi
  if ! pg_run "$bindir/pg_ctl" -D "$home/data" status >/dev/null 2>&1; then
    say "starting the local PostGIS cluster"
    PG_STARTED_HERE=1
    pg_run "$bindir/pg_ctl" -D "$home/data" -l "$home/postgres.log" -w -t 60 \
      -o "-c listen_addresses='' -k $home/run -c max_connections=100 -c shared_buffers=$(pg_shared_buffers) \
          -c wal_buffers=${PG_WAL_BUFFERS:-64MB} -c fsync=${PG_FSYNC:-on} -c synchronous_commit=${PG_SYNC_COMMIT:-on}" start >/dev/null \
      || { tail -n 20 "$home/postgres.log" >&2; die "the local PostgreSQL did not start"; }
  fi
}

pg_stop() {
  local bindir home
  bindir="$(pg_bindir)"
  home="$(readlink -f "$PGHOME" 2>/dev/null || true)"
  if [ -n "$home" ] && [ -f "$home/data/PG_VERSION" ]; then
    pg_run "$bindir/pg_ctl" -D "$home/data" -m fast stop >/dev/null 2>&1 && say "local PostGIS stopped" || true
  fi
}

pg_psql() { "$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h "$(pg_socket_dir)" -U geoservice "$@"; }

# Creates database $1 with PostGIS in the local cluster unless it exists.
pg_ensure_db() {
  local db="$1"
  if [ -z "$(pg_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
    pg_psql -d postgres -c "CREATE DATABASE \"$db\""
  fi
  pg_psql -d "$db" -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
}

local_url() { echo "postgresql+psycopg2://geoservice@/$1?host=$(pg_socket_dir)"; }

# A database URL as libpq tools (psql, pg_dump) take it: without SQLAlchemy's driver suffix
# and without the password, which goes to PGPASSWORD instead (a command line is visible to
# every local user in `ps`):   export PGPASSWORD="$(url_password "$url")"
libpq_url() {
  # The URL goes through stdin (printf is a shell builtin): a python3 argument would show the
  # password to every local user in `ps`.
  printf '%s' "$1" | python3 -c '
import sys, urllib.parse as u
parts = u.urlsplit(sys.stdin.read())
scheme = "postgresql" if parts.scheme.split("+")[0] in ("postgres", "postgresql") else parts.scheme
netloc = parts.netloc.rsplit("@", 1)
if len(netloc) == 2:
    user = netloc[0].split(":", 1)[0]
    netloc = [f"{user}@{netloc[1]}"]
print(u.urlunsplit((scheme, netloc[0], parts.path, parts.query, parts.fragment)))
'
}
url_password() {
  printf '%s' "$1" | python3 -c 'import sys, urllib.parse as u; print(u.unquote(u.urlsplit(sys.stdin.read()).password or ""))'
}

# A PostgreSQL client tool: the one next to the server with PostGIS, else the one on PATH (an
# application host may have only the client package).
pg_tool() {
  local dir
  dir="$(pg_bindir)"
  if [ -n "$dir" ] && [ -x "$dir/$1" ]; then echo "$dir/$1"; return; fi
  command -v "$1" || die "$1 is not installed (apt install postgresql-client)"
}

ensure_secret_key() {
  mkdir -p "$INSTANCE"
  if [ ! -s "$INSTANCE/secret_key" ]; then
    (umask 077 && "$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(32))' >"$INSTANCE/secret_key")
  fi
  cat "$INSTANCE/secret_key"
}
