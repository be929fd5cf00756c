"""Alembic, driven with the app's engine (used by `flask db-upgrade` and the tests)."""

from __future__ import annotations

import re

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


# Tables partitioned by month (migration 0026): their partitions are maintained by
# `flask partitions` (geoservice.partitions), not described by the models, and the references
# to them are trigger-checked (listed in `soft_foreign_keys`), not foreign keys.
PARTITIONED_TABLES = ("issues", "issue_events")
_PARTITION_NAME = re.compile(r"^(issues|issue_events)_(p\d{4}_\d{2}|default)$")


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Autogenerate's filter: GeoAlchemy2's; procrastinate's own tables (the job queue's
    schema is applied whole by its migration, not described by our models); the monthly
    partitions and the trigger-checked references to partitioned tables (the models keep
    those `ForeignKey`s so the ORM orders its inserts)."""
    from geoalchemy2 import alembic_helpers

    if type_ == "table" and name and name.startswith("procrastinate_"):
        return False
    if type_ == "table" and name and (_PARTITION_NAME.match(name) or name == "soft_foreign_keys"):
        return False
    if type_ == "foreign_key_constraint" and obj.referred_table.name in PARTITIONED_TABLES:
        return False
    table = getattr(obj, "table", None) if type_ in ("index", "column") else None
    if table is not None and table.name.startswith("procrastinate_"):
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)
