"""What a layer table needs besides its columns, as Alembic operations for its migration.

The first layers' migrations gave each layer table statement triggers that keep what is
derived from it current: its writes move the layer tiles' generation (`tile_changes`,
migration 0025: without it a cached tile or a 304 would outlive an edit), count in
`data_generations` (0027: cached pages), keep each feature's bbox (`layer_feature_boxes`,
0035) and its ready low-zoom tile rows (`layer_feature_tiles`, 0050). A layer type added
later (`flask db-revision` after a new `layers/*.py`) gets the same: the generated migration
calls `op.keep_layer_table("schools")` after creating the table, and
`op.release_layer_table("schools")` before dropping it (`layer_table_writer`, used by
migrations/env.py). The trigger functions are those of the migrations named; only the
per-table triggers and the boxes' partial index are created here.
"""

from __future__ import annotations

from collections.abc import Collection

from alembic.autogenerate import renderers, rewriter
from alembic.operations import MigrateOperation, Operations, ops

from geoservice.migrate import track_changes

_STATEMENT_TRIGGERS = (  # (name suffix, event, transition tables, function)
    ("feature_boxes_inserted", "INSERT", "NEW TABLE AS new_rows", "layer_feature_boxes_inserted"),
    (
        "feature_boxes_updated",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "layer_feature_boxes_updated",
    ),
    ("feature_boxes_deleted", "DELETE", "OLD TABLE AS old_rows", "layer_feature_boxes_deleted"),
    ("feature_boxes_truncated", "TRUNCATE", None, "layer_feature_boxes_truncated"),
    ("feature_tiles_inserted", "INSERT", "NEW TABLE AS new_rows", "layer_feature_tiles_inserted"),
    (
        "feature_tiles_updated",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "layer_feature_tiles_updated",
    ),
    ("feature_tiles_deleted", "DELETE", "OLD TABLE AS old_rows", "layer_feature_tiles_deleted"),
    ("feature_tiles_truncated", "TRUNCATE", None, "layer_feature_tiles_truncated"),
    ("tile_changed", "INSERT OR UPDATE OR DELETE OR TRUNCATE", None, "tile_changed('layers')"),
)


@Operations.register_operation("keep_layer_table")
class KeepLayerTableOp(MigrateOperation):
    """Creates a new, still empty layer table's triggers (see the module)."""

    def __init__(self, table: str) -> None:
        self.table = table

    @classmethod
    def keep_layer_table(cls, operations: Operations, table: str) -> None:
        operations.invoke(cls(table))

    def reverse(self) -> ReleaseLayerTableOp:
        return ReleaseLayerTableOp(self.table)


@Operations.register_operation("release_layer_table")
class ReleaseLayerTableOp(MigrateOperation):
    """Drops a layer table's triggers and what they kept (before the table is dropped)."""

    def __init__(self, table: str) -> None:
        self.table = table

    @classmethod
    def release_layer_table(cls, operations: Operations, table: str) -> None:
        operations.invoke(cls(table))

    def reverse(self) -> KeepLayerTableOp:
        return KeepLayerTableOp(self.table)


@Operations.implementation_for(KeepLayerTableOp)
def keep_layer_table(operations: Operations, operation: KeepLayerTableOp) -> None:
    table = operation.table
    # The triggers keep rows from now on: rows already there would be missing from the boxes
    # and low-zoom tiles (a tile not drawing them). A generated migration creates the table
    # just before, empty.
    offline = operations.get_context().as_sql  # `alembic upgrade --sql`: no database to ask
    if (
        not offline
        and operations.get_bind()
        .exec_driver_sql(f'SELECT EXISTS (SELECT 1 FROM "{table}")')
        .scalar()
    ):
        raise RuntimeError(f"keep_layer_table({table!r}): the table must be new and empty")
    operations.execute(
        f'CREATE INDEX "ix_layer_feature_boxes_{table}" ON layer_feature_boxes USING gist (box)'
        f" WHERE layer = '{table}'"
    )
    for suffix, event, transition, function in _STATEMENT_TRIGGERS:
        referencing = f" REFERENCING {transition}" if transition else ""
        call = function if function.endswith(")") else f"{function}()"
        operations.execute(
            f'CREATE TRIGGER "{table}_{suffix}" AFTER {event} ON "{table}"'
            f"{referencing} FOR EACH STATEMENT EXECUTE FUNCTION {call}"
        )
    track_changes(operations, table)


@Operations.implementation_for(ReleaseLayerTableOp)
def release_layer_table(operations: Operations, operation: ReleaseLayerTableOp) -> None:
    table = operation.table
    for suffix, _, _, _ in _STATEMENT_TRIGGERS:
        operations.execute(f'DROP TRIGGER IF EXISTS "{table}_{suffix}" ON "{table}"')
    operations.execute(f'DROP TRIGGER IF EXISTS data_touch ON "{table}"')
    operations.execute(f'DROP INDEX IF EXISTS "ix_layer_feature_boxes_{table}"')
    operations.execute(f"DELETE FROM layer_feature_boxes WHERE layer = '{table}'")
    operations.execute(f"DELETE FROM layer_feature_tiles WHERE layer = '{table}'")
    # The write counter stays (bumped, not deleted): the sum of all counters, which answers
    # computed from every table are validated by, must never come back to an earlier value.
    operations.execute(
        f"UPDATE data_generations SET generation = generation + 1 WHERE subject = '{table}'"
    )
    operations.execute("INSERT INTO tile_changes (layer) VALUES ('layers')")


@renderers.dispatch_for(KeepLayerTableOp)
def _render_keep(autogen_context, operation: KeepLayerTableOp) -> str:
    return f"op.keep_layer_table({operation.table!r})"


@renderers.dispatch_for(ReleaseLayerTableOp)
def _render_release(autogen_context, operation: ReleaseLayerTableOp) -> str:
    return f"op.release_layer_table({operation.table!r})"


def layer_table_writer(layer_tables: Collection[str]) -> rewriter.Rewriter:
    """An autogenerate rewriter: a created layer table is followed by its `keep_layer_table`,
    a dropped one preceded by its `release_layer_table`."""
    writer = rewriter.Rewriter()

    @writer.rewrites(ops.CreateTableOp)
    def created(context, revision, operation):
        if operation.table_name in layer_tables:
            return [operation, KeepLayerTableOp(operation.table_name)]
        return operation

    @writer.rewrites(ops.DropTableOp)
    def dropped(context, revision, operation):
        if operation.table_name in layer_tables:
            return [ReleaseLayerTableOp(operation.table_name), operation]
        return operation

    return writer
