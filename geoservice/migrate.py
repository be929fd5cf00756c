"""Alembic, driven with the app's engine (used by `flask db-upgrade` and the tests)."""

from __future__ import annotations

import re
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from geoservice.config import PROJECT_ROOT


def alembic_config(engine: Engine, layers_package: str = "layers") -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["engine"] = engine
    config.attributes["layers_package"] = layers_package
    return config


def _run(engine: Engine, layers_package: str, fn, *args, **kwargs) -> None:
    config = alembic_config(engine, layers_package)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        fn(config, *args, **kwargs)


def upgrade(engine: Engine, revision: str = "heads", layers_package: str = "layers") -> None:
    _run(engine, layers_package, command.upgrade, revision)


def downgrade(engine: Engine, revision: str, layers_package: str = "layers") -> None:
    _run(engine, layers_package, command.downgrade, revision)


def autogenerate(
    engine: Engine, message: str, layers_package: str = "layers", versions_dir: str | None = None
) -> None:
    config = alembic_config(engine, layers_package)
    if versions_dir:
        config.set_main_option("version_locations", versions_dir)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


# Written only by triggers (migration 0027, geoservice/httpcache.py), not described by models.
CHANGE_TRACKING_TABLES = frozenset({"data_generations", "data_touches"})
# Tables whose writes are not counted (migration 0027): nothing cached reads them, or every
# request writes them (counters, logs, queues, the token stamp). Every other table is.
UNTRACKED_TABLES = frozenset(
    {
        "alembic_version",
        "spatial_ref_sys",
        *CHANGE_TRACKING_TABLES,
        "rate_counters",
        "audit_log",
        "api_tokens",
        "spent_challenges",
        "notify_deliveries",
        "notify_messages",
        "recent_writes",  # every write commit stamps its account (replica routing)
        "shared_answers",  # a cache of answers (httpcache.SharedAnswers)
        "soft_foreign_keys",
        "tile_changes",  # the tiles' own generations (catalogue/tiles.py)
        "issue_cell_changes",  # the generations of areas (httpcache.area_generation)
        "event_changes",  # the earliest times of event writes (httpcache.written_before)
        "issue_fact_changes",  # the same for writes to the ranking columns of issues (0048)
        # Derived by triggers from issues / issue_events, which are counted themselves.
        "issue_event_rollup",
        # A closed week's ranking facts, valid under its own stored write counters (0048).
        "ranking_snapshots",
        "ranking_snapshot_rows",
        "ranking_snapshot_figures",
        "issue_tile_facets",
        "issue_tile_holders",
        "issue_tile_days",
        "layer_feature_boxes",  # derived by triggers from the layer tables (migration 0035)
        "layer_feature_tiles",  # the same (migration 0050)
        "photo_hashes",  # the near-duplicate search's files (0055): nothing cached reads it
    }
)


def track_changes(op: Any, table: str) -> None:
    """In a migration: counts the commits that write `table` (data_generations), so that cached
    answers reading it are revalidated (geoservice/httpcache.py). A table created without this
    is simply never cached: call it for a new layer's table to make its pages cacheable."""
    op.execute(
        f'CREATE TRIGGER data_touch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "{table}"'
        " FOR EACH STATEMENT EXECUTE FUNCTION data_touch()"
    )
    op.execute(f"INSERT INTO data_generations (subject) VALUES ('{table}') ON CONFLICT DO NOTHING")


# Tables partitioned by month (migration 0026): their partitions are maintained by
# `flask partitions` (geoservice.partitions), not described by the models, and the references
# to them are trigger-checked (listed in `soft_foreign_keys`), not foreign keys.
PARTITIONED_TABLES = ("issues", "issue_events")
_PARTITION_NAME = re.compile(r"^(issues|issue_events)_(p\d{4}_\d{2}|default)$")
# References from issues checked per statement by a trigger (migration 0048), not foreign keys:
# the models keep their `ForeignKey`s (the ORM orders its inserts by them).
TRIGGER_CHECKED_REFERENCES = frozenset(
    {
        ("issues", "grid_id"),
        ("issues", "primary_place_id"),
        ("issues", "leader_id"),
        ("issues", "unit_id"),
    }
)


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Autogenerate's filter: GeoAlchemy2's; procrastinate's own tables (the job queue's
    schema is applied whole by its migration, not described by our models); the monthly
    partitions and the trigger-checked references (to partitioned tables, and from issues'
    attribution columns; the models keep those `ForeignKey`s so the ORM orders its inserts)."""
    from geoalchemy2 import alembic_helpers

    if type_ == "table" and name and name.startswith("procrastinate_"):
        return False
    if type_ == "table" and name in CHANGE_TRACKING_TABLES:
        return False
    if type_ == "table" and name and (_PARTITION_NAME.match(name) or name == "soft_foreign_keys"):
        return False
    if type_ == "foreign_key_constraint" and obj.referred_table.name in PARTITIONED_TABLES:
        return False
    if type_ == "foreign_key_constraint" and any(
        (obj.parent.name, column) in TRIGGER_CHECKED_REFERENCES for column in obj.column_keys
    ):
        return False
    table = getattr(obj, "table", None) if type_ in ("index", "column") else None
    if table is not None and table.name.startswith("procrastinate_"):
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)
