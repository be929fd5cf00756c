"""photo hashes: the near-duplicate search walks distinct files, not every check

The evidence check of a photo looked for earlier checks of the same file (sha256, first five
by id) and for near dHashes (a GIN index on every check's bands). Both read every copy of a
file: a picture uploaded thousands of times (a reused "after" photo, or the day replay's
bench photo) made each new upload read thousands of rows — 65 ms for the near search and
17 ms for the exact one per photo at 21,847 copies, half the database CPU of the working-day
replay at scale 100. Now:

- `photo_hashes`: one row per distinct file (sha256, dHash, bands; GIN on the bands), filled
  from the checks here and by every new check; the near search reads it, then the first check
  of each near file by (sha256, id);
- `ix_photo_checks_sha256_id` (with the subject, read from the index alone) replaces
  `ix_photo_checks_sha256`: the first checks of a file in id order, so the exact search stops
  after five. Without it the planner walked the primary key in id order filtering on sha256,
  as for a file spread evenly over the table: 8 ms for a file whose copies came after
  another's 21,847;
- `ix_photo_checks_dhash_bands` is dropped (its search moved to `photo_hashes`); the checks
  keep their bands.

Revision ID: 7e3a9c1d5f02
Revises: 6b2d8f4e1a93
Create Date: 2026-12-04 10:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7e3a9c1d5f02"
down_revision: str | Sequence[str] | None = "6b2d8f4e1a93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Each file's first check with a hash.
FILES = """INSERT INTO photo_hashes (sha256, dhash, dhash_bands)
SELECT DISTINCT ON (sha256) sha256, dhash, dhash_bands FROM photo_checks
WHERE dhash IS NOT NULL AND dhash_bands IS NOT NULL ORDER BY sha256, id"""


def upgrade() -> None:
    op.create_table(
        "photo_hashes",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("dhash", sa.BigInteger(), nullable=False),
        sa.Column("dhash_bands", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_photo_hashes")),
    )
    op.execute(FILES)
    op.create_index(
        "ix_photo_hashes_dhash_bands", "photo_hashes", ["dhash_bands"], postgresql_using="gin"
    )
    op.create_index(
        "ix_photo_checks_sha256_id",
        "photo_checks",
        ["sha256", "id"],
        postgresql_include=["subject"],
    )
    op.drop_index("ix_photo_checks_sha256", table_name="photo_checks")
    op.drop_index("ix_photo_checks_dhash_bands", table_name="photo_checks")


def downgrade() -> None:
    op.create_index(
        "ix_photo_checks_dhash_bands", "photo_checks", ["dhash_bands"], postgresql_using="gin"
    )
    op.create_index("ix_photo_checks_sha256", "photo_checks", ["sha256"])
    op.drop_index("ix_photo_checks_sha256_id", table_name="photo_checks")
    op.drop_table("photo_hashes")
