"""Alembic environment: our metadata (models + every declared layer), GeoAlchemy2 helpers."""

import os

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

import geoservice.assessment.models
import geoservice.citizens.models
import geoservice.fieldwork.models  # noqa: F401
from geoservice.config import normalise_database_url
from geoservice.db import Base
from geoservice.layer_upkeep import layer_table_writer
from geoservice.migrate import include_object
from geoservice.notifications import models as _notification_models  # noqa: F401
from geoservice.registry import LayerRegistry

config = context.config
registry = LayerRegistry.discover(config.attributes.get("layers_package", "layers"))
target_metadata = Base.metadata

OPTIONS = dict(
    target_metadata=target_metadata,
    include_object=include_object,
    # A new layer table gets its triggers (geoservice/layer_upkeep.py).
    process_revision_directives=alembic_helpers.writer.chain(
        layer_table_writer({spec.table for spec in registry})
    ),
    render_item=alembic_helpers.render_item,
    compare_type=True,
)


def run_migrations_offline() -> None:
    context.configure(url=os.environ["DATABASE_URL"], literal_binds=True, **OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(
        normalise_database_url(os.environ["DATABASE_URL"]), poolclass=pool.NullPool
    )
    with engine.connect() as conn:
        context.configure(connection=conn, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
