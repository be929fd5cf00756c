"""scripts/backup and scripts/restore, as an operator runs them: a database with the demo
county and a photo folder are backed up, restored into an empty database and folder, and come
back identical; a restore into a database that holds data, or from a file that is not a backup,
changes nothing."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from geoservice import create_app, migrate
from geoservice.demo import generate_county
from geoservice.demo.seed import load_demo
from geoservice.registry import layers

ROOT = Path(__file__).resolve().parent.parent
TABLES = """SELECT tablename FROM pg_tables WHERE schemaname = 'public'
            AND tablename <> 'spatial_ref_sys' ORDER BY 1"""


@pytest.fixture
def scratch_databases(engine) -> Iterator[list[str]]:
    """Two empty PostGIS-less databases (URLs), dropped afterwards."""
    names = [f"scratch_backup_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    admin = engine.execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no CREATEDB right on an external test database
        pytest.skip(f"cannot create a scratch database: {exc}")
    try:
        yield [
            make_url(engine.url).set(database=n).render_as_string(hide_password=False)
            for n in names
        ]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run(script: str, *args: str, database_url: str, upload_dir: Path):
    env = os.environ | {"DATABASE_URL": database_url, "UPLOAD_DIR": str(upload_dir)}
    return subprocess.run(
        [str(ROOT / "scripts" / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def snapshot(url: str) -> dict[str, object]:
    """Every table's row count, and the layers' and issues' geometry, byte for byte."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(text(TABLES)).scalars().all()
            found: dict[str, object] = {
                t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar() for t in tables
            }
            for table in ("grids", "roads", "issues"):
                found[f"{table}.geom"] = conn.execute(
                    text(
                        "SELECT md5(string_agg(ST_AsEWKB(geom)::text, ',' ORDER BY id))"
                        f" FROM {table}"
                    )
                ).scalar()
            found["alembic"] = conn.execute(
                text("SELECT version_num FROM alembic_version")
            ).scalar()
            return found
    finally:
        engine.dispose()


def test_a_backup_restores_into_an_empty_database_identically(scratch_databases, tmp_path):
    source_url, target_url = scratch_databases
    source = create_engine(source_url)
    try:
        with source.begin() as conn:
            conn.execute(text("CREATE EXTENSION postgis"))
        migrate.upgrade(source)
        app = create_app({"DATABASE_URL": source_url, "SECRET_KEY": "backup-test"})
        with Session(bind=source) as db, app.app_context():
            load_demo(db, layers(app), generate_county(seed=5, scale=0.2, today=date.today()))
            db.commit()
    finally:
        source.dispose()
    photos = tmp_path / "uploads"
    (photos / "ab").mkdir(parents=True)
    (photos / "ab" / "abcdef.jpg").write_bytes(b"\xff\xd8 not really a jpeg \xff\xd9")
    out = tmp_path / "backups"

    made = run("backup", str(out), database_url=source_url, upload_dir=photos)
    assert made.returncode == 0, made.stderr
    (dump,) = out.glob("geoservice-*.dump")
    (archive,) = out.glob("uploads-*.tar.gz")
    assert {oct(f.stat().st_mode & 0o777) for f in (dump, archive)} == {"0o600"}  # owner only

    restored_photos = tmp_path / "restored"
    not_a_backup = tmp_path / "notes.dump"
    not_a_backup.write_text("这不是备份文件")
    refused = run("restore", str(not_a_backup), database_url=target_url, upload_dir=restored_photos)
    assert refused.returncode != 0 and "not a pg_dump" in refused.stderr

    done = run(
        "restore", str(dump), str(archive), database_url=target_url, upload_dir=restored_photos
    )
    assert done.returncode == 0, done.stderr
    before, after = snapshot(source_url), snapshot(target_url)
    assert after == before
    assert before["issues"] > 0 and before["issue_events"] > before["issues"]
    assert (restored_photos / "ab" / "abcdef.jpg").read_bytes() == (
        photos / "ab" / "abcdef.jpg"
    ).read_bytes()

    again = run("restore", str(dump), database_url=target_url, upload_dir=restored_photos)
    assert again.returncode != 0 and "already holds" in again.stderr
    assert snapshot(target_url) == before  # refused before touching anything


@pytest.mark.parametrize(
    ("url", "for_libpq", "password"),
    [
        (
            "postgresql+psycopg2://geoservice@/db?host=/run/pg",
            "postgresql://geoservice@/db?host=/run/pg",
            "",
        ),
        (
            "postgres://cw:p%40ss%3Aw0rd@10.0.0.5:5433/cw",
            "postgresql://cw@10.0.0.5:5433/cw",
            "p@ss:w0rd",
        ),
    ],
)
def test_urls_for_the_postgresql_tools_keep_the_password_off_the_command_line(
    url, for_libpq, password
):
    shell = 'source scripts/lib.sh; libpq_url "$1"; echo "[$(url_password "$1")]"'
    done = subprocess.run(
        ["bash", "-c", shell, "-", url], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == [for_libpq, f"[{password}]"]


def test_the_url_helpers_hand_python_no_password_on_its_command_line(tmp_path):
    """libpq_url and url_password run python3: its argv (seen by every local user in `ps`)
    must not hold the URL's password; the URL goes through stdin."""
    log = tmp_path / "argv.log"
    wrapper = tmp_path / "python3"
    real = subprocess.run(["bash", "-c", "command -v python3"], capture_output=True, text=True)
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {real.stdout.strip()} "$@"\n')
    wrapper.chmod(0o755)
    url = "postgresql+psycopg2://cw:S3cret-Pw@db.example:5432/cw"
    shell = 'source scripts/lib.sh; libpq_url "$DB_URL"; echo "[$(url_password "$DB_URL")]"'
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "DB_URL": url}
    done = subprocess.run(
        ["bash", "-c", shell], cwd=ROOT, capture_output=True, text=True, check=True, env=env
    )
    assert done.stdout.splitlines() == ["postgresql://cw@db.example:5432/cw", "[S3cret-Pw]"]
    assert log.exists() and "S3cret-Pw" not in log.read_text()
