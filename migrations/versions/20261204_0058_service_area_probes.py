"""service area facts by index probes: a partial index of the marked admin areas

Every report and attribution preview asks whether the service area is configured (an area
marked `service_area`) and, if not, which is the highest level imported; both were read with
one aggregate over every admin area (a sequential scan: ~1.4 ms of the ~2.3 ms attribution
statement with 2,801 areas). They are now answered by index probes: this partial index for
the marked areas, ix_admin_areas_level for the levels.

Revision ID: 4c8e1a6d2b90
Revises: 9a5c3e7f1b28
Create Date: 2026-12-04 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4c8e1a6d2b90"
down_revision: str | Sequence[str] | None = "9a5c3e7f1b28"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_admin_areas_service_area",
        "admin_areas",
        ["id"],
        postgresql_where=sa.text("service_area"),
    )


def downgrade() -> None:
    op.drop_index("ix_admin_areas_service_area", table_name="admin_areas")
