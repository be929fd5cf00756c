"""Migrations build the schema from empty, agree with the models, and a new layer is one file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

import geoservice.assessment.models
import geoservice.citizens.models
import geoservice.fieldwork.models
import geoservice.notifications.models  # noqa: F401
from geoservice import migrate
from geoservice.config import PROJECT_ROOT
from geoservice.db import Base
from tests.scratch import create_scratch_database, drop_scratch_database


@pytest.fixture
def scratch_database_url(engine) -> Iterator[str]:
    """A brand-new empty database with PostGIS, dropped afterwards."""
    name, url = create_scratch_database(engine, "db")
    with create_engine(url).begin() as conn:
        conn.execute(text("CREATE EXTENSION postgis"))
    yield url.render_as_string(hide_password=False)
    drop_scratch_database(engine, name)


def test_the_database_is_at_the_single_head(engine):
    script = ScriptDirectory.from_config(migrate.alembic_config(engine))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    assert set(current) == set(script.get_heads())
    assert len(script.get_heads()) == 1


def test_models_and_migrations_agree(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={"include_object": migrate.include_object, "compare_type": True},
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_the_tile_aggregates_are_vacuumed_after_one_percent_died(engine):
    """Every write deletes and re-inserts its cells' rows: autovacuum must not wait for 20 %."""
    with engine.connect() as conn:
        options = dict(
            conn.execute(
                text(
                    "SELECT relname, reloptions FROM pg_class"
                    " WHERE relname LIKE 'issue\\_tile\\_%' AND relkind = 'r'"
                )
            ).all()
        )
    assert set(options) == {
        "issue_tile_counts",
        "issue_tile_days",
        "issue_tile_facets",
        "issue_tile_holders",
    }
    for table, reloptions in options.items():
        assert "autovacuum_vacuum_scale_factor=0.01" in (reloptions or []), table


def test_migrations_go_down_to_empty_and_back_up(scratch_database_url):
    scratch = create_engine(scratch_database_url)
    migrate.upgrade(scratch)
    migrate.downgrade(scratch, "base")
    with scratch.connect() as conn:
        tables = conn.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).all()
    assert set(tables) <= {"alembic_version", "spatial_ref_sys"}
    migrate.upgrade(scratch)
    with scratch.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM places")) == 0
    scratch.dispose()


def test_the_queue_migration_gives_waiting_deliveries_their_jobs(scratch_database_url):
    """Deliveries left pending by the worker loop before procrastinate get a job each when
    the queue's migration runs; delivered ones do not."""
    scratch = create_engine(scratch_database_url)
    migrate.upgrade(scratch, "7c1e0a5b2d17")  # the revision before the queue
    with scratch.begin() as conn:
        channel = conn.scalar(
            text(
                "INSERT INTO notify_channels (kind, name, config, secrets, enabled)"
                " VALUES ('webhook', 'hook', '{}', '{}', true) RETURNING id"
            )
        )
        for n, status in enumerate(["pending", "delivered", "sending"]):
            message = conn.scalar(
                text(
                    "INSERT INTO notify_messages (kind, dedupe_key, subject, data)"
                    " VALUES ('test', :k, 's', '{}') RETURNING id"
                ),
                {"k": f"m{n}"},
            )
            conn.execute(
                text(
                    "INSERT INTO notify_deliveries (message_id, channel_id, delivery_key, status)"
                    " VALUES (:m, :c, :k, :s)"
                ),
                {"m": message, "c": channel, "k": f"d{n}", "s": status},
            )
    migrate.upgrade(scratch)
    with scratch.connect() as conn:
        waiting = conn.scalars(
            text("SELECT id FROM notify_deliveries WHERE status <> 'delivered' ORDER BY id")
        ).all()
        rows = conn.execute(
            text(
                "SELECT queue_name, task_name, lock, (args->>'delivery_id')::bigint, status"
                " FROM procrastinate_jobs ORDER BY id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("notifications", "geoservice.notifications.deliver", f"delivery:{d}", d, "todo")
        for d in waiting
    ]
    scratch.dispose()


SCHOOL_LAYER = '''
"""学校: a throw-away fifth layer type."""

from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from geoservice.models import Place
from geoservice.registry import Attribute, Claim, LayerSpec


class School(Place):
    __tablename__ = "schools"

    id: Mapped[int] = mapped_column(ForeignKey("places.id", ondelete="CASCADE"), primary_key=True)
    geom: Mapped[Any] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False
    )
    stage: Mapped[str] = mapped_column(String(16), nullable=False)

    __mapper_args__ = {"polymorphic_identity": "school"}


LAYER = LayerSpec(
    name="school",
    collection="schools",
    title="学校",
    model=School,
    geometry_types=("Polygon", "MultiPolygon"),
    claim=Claim("contains"),
    precedence=35,
    attributes=(Attribute("stage", "学段", required=True, choices=("小学", "初中")),),
)
'''

NEW_LAYER_SCRIPT = """
import json, sys
from alembic import command
from sqlalchemy import create_engine
from geoservice import create_app, migrate

url, versions = sys.argv[1], sys.argv[2]
engine = create_engine(url)
migrate.upgrade(engine)
config = migrate.alembic_config(engine)
config.set_main_option("version_locations", sys.argv[3] + ":" + versions)
with engine.begin() as conn:
    config.attributes["connection"] = conn
    command.revision(config, message="add school", autogenerate=True, version_path=versions)
with engine.begin() as conn:
    config.attributes["connection"] = conn
    command.upgrade(config, "heads")
from sqlalchemy import text
from sqlalchemy.orm import Session
from geoservice.accounts.accounts import create_user, issue_token
with Session(engine) as session:
    token = issue_token(session, create_user(session, "reader", "viewer"))
    session.commit()
app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x"})
client = app.test_client()
response = client.get("/api/collections", headers={"Authorization": f"Bearer {token}"})
collections = [c["id"] for c in response.get_json()["collections"]]

# A school drawn, its tile read, then the school moved: the next tile request must see it.
with Session(engine) as session:
    planner = issue_token(session, create_user(session, "planner", "planner"))
    session.commit()
auth = {"Authorization": f"Bearer {planner}"}
def square(lon, lat, side=0.004):
    ring = [[lon, lat], [lon + side, lat], [lon + side, lat + side], [lon, lat + side], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}
created = client.post(
    "/api/collections/schools/items",
    json={"type": "Feature", "geometry": square(120.10, 33.70),
          "properties": {"code": "XX01", "name": "实验小学", "stage": "小学"}},
    headers=auth,
)
fid = created.get_json()["id"]
tile = "/api/collections/schools/tiles/10/853/410.pbf"
first = client.get(tile, headers=auth)
etag = client.get(f"/api/collections/schools/items/{fid}", headers=auth).headers["ETag"]
moved = client.patch(
    f"/api/collections/schools/items/{fid}",
    json={"type": "Feature", "geometry": square(120.12, 33.70)},
    headers={**auth, "If-Match": etag},
)
again = client.get(tile, headers={**auth, "If-None-Match": first.headers["ETag"]})
with engine.begin() as conn:  # a write to the layer table alone (SQL, not through the API)
    conn.execute(text("UPDATE schools SET geom = ST_Translate(geom, 0.01, 0)"))
third = client.get(tile, headers={**auth, "If-None-Match": again.headers["ETag"]})
with engine.connect() as conn:
    kept = conn.execute(text(
        "SELECT (SELECT array_agg(tgname::text ORDER BY tgname) FROM pg_trigger"
        "        WHERE tgrelid = 'schools'::regclass AND NOT tgisinternal),"
        " (SELECT array_agg(replace(tgname, 'grids', 'schools') ORDER BY tgname) FROM pg_trigger"
        "        WHERE tgrelid = 'grids'::regclass AND NOT tgisinternal),"
        " (SELECT count(*) FROM layer_feature_boxes WHERE layer = 'schools'),"
        " (SELECT count(*) FROM layer_feature_tiles WHERE layer = 'schools' AND z = 10),"
        " (SELECT count(*) FROM data_generations WHERE subject = 'schools')"
    )).one()
COUNTERS = (
    "SELECT (SELECT sum(generation) FROM data_generations),"
    " (SELECT max(id) FROM tile_changes WHERE layer = 'layers')"
)
with engine.connect() as conn:
    counters_before = conn.execute(text(COUNTERS)).one()
with engine.begin() as conn:
    config.attributes["connection"] = conn
    command.downgrade(config, "-1")
with engine.connect() as conn:
    left = conn.execute(text(
        "SELECT to_regclass('schools') IS NULL,"
        " (SELECT count(*) FROM layer_feature_boxes WHERE layer = 'schools')"
        " + (SELECT count(*) FROM layer_feature_tiles WHERE layer = 'schools')"
    )).one()
    counters_after = conn.execute(text(COUNTERS)).one()
with engine.begin() as conn:
    config.attributes["connection"] = conn
    command.upgrade(config, "heads")
print(json.dumps({
    "collections": collections,
    "downgraded": [left[0], left[1]],
    "counters_moved": [counters_after[0] > counters_before[0],
                       counters_after[1] > counters_before[1]],
    "statuses": [created.status_code, first.status_code, moved.status_code, again.status_code,
                 third.status_code],
    "tile_changed": first.data != again.data != third.data,
    "triggers": kept[0], "grids_triggers": kept[1],
    "boxes": kept[2], "z10_rows": kept[3], "generations": kept[4],
}))
"""


def test_a_fifth_layer_is_one_new_file_plus_a_generated_migration(
    scratch_database_url, tmp_path: Path
):
    shutil.copytree(PROJECT_ROOT / "layers", tmp_path / "layers")
    (tmp_path / "layers" / "school.py").write_text(SCHOOL_LAYER, encoding="utf-8")
    versions = tmp_path / "versions"
    versions.mkdir()
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{PROJECT_ROOT}"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            NEW_LAYER_SCRIPT,
            scratch_database_url,
            str(versions),
            str(PROJECT_ROOT / "migrations" / "versions"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["collections"] == [
        "sites",  # layers/site.py (precedence 50); per-kind collections only when kinds exist
        "markets",
        "schools",
        "compounds",
        "roads",
        "grids",
        "issues",
    ]
    # The new layer is kept like the first ones (geoservice/layer_upkeep.py): a moved school
    # shows on the very next tile request (no stale 304), its bbox and low-zoom tile rows are
    # kept, its writes are counted for cached pages.
    assert out["statuses"] == [201, 200, 200, 200, 200]
    assert out["tile_changed"]
    assert out["triggers"] == sorted(out["grids_triggers"])  # the first layers' set
    assert {"data_touch", "schools_tile_changed", "schools_feature_tiles_updated"} <= set(
        out["triggers"]
    )
    assert (out["boxes"], out["z10_rows"], out["generations"]) == (1, 1, 1)
    assert out["downgraded"] == [True, 0]  # the table gone, and nothing it kept left behind
    # Answers validated by the sum of all write counters, and cached layer tiles, see the
    # layer go: the counters move on (a counter deleted would take the sum back).
    assert out["counters_moved"] == [True, True]
    (generated,) = versions.glob("*.py")
    source = generated.read_text()
    assert (
        "create_geospatial_table('schools'" in source
        or 'create_geospatial_table("schools"' in source
    )
    assert "op.keep_layer_table('schools')" in source
    assert "op.release_layer_table('schools')" in source
    assert "'grids'" not in source and '"grids"' not in source  # only the new table
    scratch = create_engine(scratch_database_url)
    with scratch.connect() as conn:
        srid = conn.scalar(text("SELECT srid FROM geometry_columns WHERE f_table_name = 'schools'"))
        gist = conn.scalar(
            text(
                "SELECT count(*) FROM pg_indexes WHERE tablename = 'schools'"
                " AND indexdef LIKE '%USING gist (geom)%'"
            )
        )
    scratch.dispose()
    assert srid == 4326
    assert gist == 1
