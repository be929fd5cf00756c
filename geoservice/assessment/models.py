"""Tables of sites and mock evaluation.

- `site_kinds`: a kind of site (小学周边, 公交站台 …) defined by data: its typed attribute
  definitions, claim radius and precedence for attribution, map colour; retired, never deleted
  while used.
- `sites`: a `places` subtype (layer `site`), so 包保 assignments (点长), 我的包保, coverage and
  attribution treat them like any other place; `attributes` holds the kind's attribute values.
- `standard_versions` → `standard_items` (项目) → `standard_contents` (内容) → `standards`
  (标准), each standard applying to some kinds (`standard_kinds`).
- `assessment_rounds`, their sites (`round_sites`, with the assigned inspector) and results
  (`assessment_results`, immutable: a database trigger refuses UPDATE and DELETE; a correction
  is a new row pointing at the row it corrects).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geoservice.db import Base
from geoservice.models import Place

ATTRIBUTE_TYPES = {"text": "文字", "integer": "整数", "choice": "选项", "date": "日期"}
GEOMETRY_TYPES = {"point": "点", "polygon": "面"}
OUTCOMES = {"pass": "合格", "fail": "不合格", "na": "不适用"}


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class SiteKind(Base):
    """A kind of site. `attributes` is a list of definitions:
    {"name": slug, "title": 中文, "type": text|integer|choice|date, "required": bool,
     "choices": [...] (choice only)}."""

    __tablename__ = "site_kinds"
    __table_args__ = (
        CheckConstraint("geometry_type IN ('point', 'polygon')", "geometry_type"),
        CheckConstraint("claim_radius_m > 0 AND claim_radius_m <= 1000", "claim_radius"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(50), nullable=False, unique=True)
    colour: Mapped[str] = mapped_column(String(7), nullable=False, server_default="#1565c0")
    icon: Mapped[str] = mapped_column(String(32), nullable=False, server_default="")
    geometry_type: Mapped[str] = mapped_column(String(8), nullable=False, server_default="point")
    attributes: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=sql_text("'[]'::jsonb")
    )
    claim_radius_m: Mapped[float] = mapped_column(Float, nullable=False, server_default="30")
    precedence: Mapped[int] = mapped_column(Integer, nullable=False, server_default="50")
    retired: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=sql_text("false"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class Site(Place):
    """点位: a place of some kind, a point or a polygon."""

    __tablename__ = "sites"
    __table_args__ = (
        CheckConstraint(
            "GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON')", "geom_point_or_polygon"
        ),
    )

    id: Mapped[int] = mapped_column(ForeignKey("places.id", ondelete="CASCADE"), primary_key=True)
    kind_id: Mapped[int] = mapped_column(
        ForeignKey("site_kinds.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    geom: Mapped[Any] = mapped_column(
        Geometry("GEOMETRY", srid=4326, spatial_index=True), nullable=False
    )
    address: Mapped[str | None] = mapped_column(String(200))
    # The community the site belongs to. Not named `community_id` on purpose: the generic
    # area links (`<level>_id`) mean "features that tile the area" (grids), which sites do not.
    community_area_id: Mapped[int | None] = mapped_column(
        ForeignKey("admin_areas.id", ondelete="RESTRICT"), index=True
    )
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=sql_text("'{}'::jsonb")
    )

    __mapper_args__ = {"polymorphic_identity": "site"}


# Metre-based queries on sites (check-in distance) use the geography cast.
Index("ix_sites_geog", func.geography(Site.__table__.c.geom), postgresql_using="gist")


class StandardVersion(Base):
    __tablename__ = "standard_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    note: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    copied_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("standard_versions.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = _created()


class StandardItem(Base):
    """测评项目."""

    __tablename__ = "standard_items"
    __table_args__ = (UniqueConstraint("version_id", "code", name="uq_standard_items_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("standard_versions.id", ondelete="CASCADE"), nullable=False, index=True
    )
    code: Mapped[str] = mapped_column(String(16), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class StandardContent(Base):
    """测评内容."""

    __tablename__ = "standard_contents"
    __table_args__ = (UniqueConstraint("item_id", "code", name="uq_standard_contents_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("standard_items.id", ondelete="CASCADE"), nullable=False, index=True
    )
    code: Mapped[str] = mapped_column(String(16), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class Standard(Base):
    """测评标准: text, score (分值), the issue category a failure raises, 负面清单 flag."""

    __tablename__ = "standards"
    __table_args__ = (
        UniqueConstraint("version_id", "code", name="uq_standards_code"),
        CheckConstraint("score > 0", "score_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("standard_versions.id", ondelete="CASCADE"), nullable=False, index=True
    )
    content_id: Mapped[int] = mapped_column(
        ForeignKey("standard_contents.id", ondelete="CASCADE"), nullable=False, index=True
    )
    code: Mapped[str] = mapped_column(String(32), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    score: Mapped[Decimal] = mapped_column(Numeric(6, 2), nullable=False)
    category: Mapped[str] = mapped_column(String(32), nullable=False)
    negative_list: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=sql_text("false")
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class StandardKind(Base):
    """A standard applies to a kind of site."""

    __tablename__ = "standard_kinds"

    standard_id: Mapped[int] = mapped_column(
        ForeignKey("standards.id", ondelete="CASCADE"), primary_key=True
    )
    kind_id: Mapped[int] = mapped_column(
        ForeignKey("site_kinds.id", ondelete="RESTRICT"), primary_key=True, index=True
    )


class AssessmentRound(Base):
    """模拟测评 round: dates, the standards version, the sample rule and its seed; or the
    results of a completed 暗访 (`kind` inspection), shown the same way."""

    __tablename__ = "assessment_rounds"
    __table_args__ = (
        CheckConstraint("ends_on >= starts_on", "dates"),
        CheckConstraint("sample_per_kind IS NULL OR sample_per_kind > 0", "sample"),
        CheckConstraint("kind IN ('mock', 'inspection')", "kind"),
        CheckConstraint("(kind = 'inspection') = (inspection_plan_id IS NOT NULL)", "inspection"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    starts_on: Mapped[date] = mapped_column(Date, nullable=False)
    ends_on: Mapped[date] = mapped_column(Date, nullable=False)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("standard_versions.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    # None: every site; N: N sites per kind per street, drawn with `seed`.
    sample_per_kind: Mapped[int | None] = mapped_column(Integer)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    checkin_radius_m: Mapped[float] = mapped_column(Float, nullable=False, server_default="100")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    # mock: a 模拟测评 round; inspection: the results of a completed 暗访 (issue 16), recorded
    # when the inspection was completed (never before: the plan is secret until then).
    kind: Mapped[str] = mapped_column(String(12), nullable=False, server_default="mock")
    inspection_plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("inspection_plans.id", ondelete="RESTRICT"), unique=True
    )


class RoundSite(Base):
    """A site of a round and the inspector assigned to it."""

    __tablename__ = "round_sites"

    round_id: Mapped[int] = mapped_column(
        ForeignKey("assessment_rounds.id", ondelete="CASCADE"), primary_key=True
    )
    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    inspector_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class AssessmentResult(Base):
    """One standard checked on one site in one round. Never updated: a correction by a planner
    is a new row with `corrects_id` and a `reason`; the row no other row corrects is in force."""

    __tablename__ = "assessment_results"
    __table_args__ = (
        ForeignKeyConstraint(
            ["round_id", "site_id"],
            ["round_sites.round_id", "round_sites.site_id"],
            ondelete="RESTRICT",
            name="fk_assessment_results_round_site",
        ),
        CheckConstraint("outcome IN ('pass', 'fail', 'na')", "outcome"),
        CheckConstraint("outcome <> 'fail' OR photo_id IS NOT NULL", "fail_has_photo"),
        CheckConstraint("corrects_id IS NULL OR reason IS NOT NULL", "correction_reason"),
        # One first submission per site and standard in a round.
        Index(
            "uq_assessment_results_first",
            "round_id",
            "site_id",
            "standard_id",
            unique=True,
            postgresql_where=sql_text("corrects_id IS NULL"),
        ),
        Index("ix_assessment_results_round_site", "round_id", "site_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    round_id: Mapped[int] = mapped_column(Integer, nullable=False)
    site_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    standard_id: Mapped[int] = mapped_column(
        ForeignKey("standards.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    outcome: Mapped[str] = mapped_column(String(4), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("photos.id", ondelete="RESTRICT"))
    issue_id: Mapped[int | None] = mapped_column(
        ForeignKey("issues.id", ondelete="RESTRICT"), index=True
    )
    checkin: Mapped[Any] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=True), nullable=True
    )
    distance_m: Mapped[float | None] = mapped_column(Float)
    far: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=sql_text("false"))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    corrects_id: Mapped[int | None] = mapped_column(
        ForeignKey("assessment_results.id", ondelete="RESTRICT"), unique=True
    )
    reason: Mapped[str | None] = mapped_column(Text)
