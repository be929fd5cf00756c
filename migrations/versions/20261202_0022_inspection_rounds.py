"""暗访 results as assessment rounds: assessment_rounds.kind and inspection_plan_id; photo
checks' dHash bands as four 16-bit quarters (evidence.dhash_bands; were eight bytes)

Revision ID: 3b7d52e0c916
Revises: fc3af1d84701
Create Date: 2026-12-02 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3b7d52e0c916"
down_revision: str | Sequence[str] | None = "fc3af1d84701"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "assessment_rounds",
        sa.Column("kind", sa.String(length=12), server_default="mock", nullable=False),
    )
    op.add_column("assessment_rounds", sa.Column("inspection_plan_id", sa.Integer(), nullable=True))
    op.create_unique_constraint(
        op.f("uq_assessment_rounds_inspection_plan_id"), "assessment_rounds", ["inspection_plan_id"]
    )
    op.create_foreign_key(
        op.f("fk_assessment_rounds_inspection_plan_id_inspection_plans"),
        "assessment_rounds",
        "inspection_plans",
        ["inspection_plan_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_check_constraint(
        op.f("ck_assessment_rounds_kind"), "assessment_rounds", "kind IN ('mock', 'inspection')"
    )
    op.create_check_constraint(
        op.f("ck_assessment_rounds_inspection"),
        "assessment_rounds",
        "(kind = 'inspection') = (inspection_plan_id IS NOT NULL)",
    )

    op.execute(QUARTERS)


QUARTERS = """UPDATE photo_checks SET dhash_bands =
  ARRAY(SELECT i * 65536 + ((dhash >> (16 * i)) & 65535)::int FROM generate_series(0, 3) i)
WHERE dhash IS NOT NULL"""
BYTES = """UPDATE photo_checks SET dhash_bands =
  ARRAY(SELECT i * 256 + ((dhash >> (8 * i)) & 255)::int FROM generate_series(0, 7) i)
WHERE dhash IS NOT NULL"""


def downgrade() -> None:
    op.execute(BYTES)
    op.drop_constraint(op.f("ck_assessment_rounds_inspection"), "assessment_rounds", type_="check")
    op.drop_constraint(op.f("ck_assessment_rounds_kind"), "assessment_rounds", type_="check")
    op.drop_constraint(
        op.f("fk_assessment_rounds_inspection_plan_id_inspection_plans"),
        "assessment_rounds",
        type_="foreignkey",
    )
    op.drop_constraint(
        op.f("uq_assessment_rounds_inspection_plan_id"), "assessment_rounds", type_="unique"
    )
    op.drop_column("assessment_rounds", "inspection_plan_id")
    op.drop_column("assessment_rounds", "kind")
