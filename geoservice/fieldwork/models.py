"""Tables of field work.

- `patrol_schedules`: a planner's rule "role R walks every place of layer L (site kind K)
  N times per day/week/month".
- `patrol_tasks`: one task per place, period and slot, for the leader holding the role at the
  start of the period (responsibility is historical: a reassignment mid-period gives the new
  holder the next period's task).
- `patrol_visits`: a visit (who, when, check-in position and distance, checklist, outcome,
  flags), at most one per task; `idempotency_key` makes an offline client's retries safe.
- `patrol_visit_issues`: the issues raised on the spot.
- `field_photos`: photos of visits and of 暗访 results (issue photos stay in `photos`).
- `photo_checks`: the evidence check of every photo (either table): hashes, flags, 存疑.
- `photo_hashes`: one row per distinct photo file checked, for the near-duplicate search.
- `inspection_plans` / `inspection_places`: 暗访 plans (a seeded sample of places for a date)
  and their results; secret until done.
"""

from __future__ import annotations

from datetime import date, datetime
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
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geoservice.db import Base

PERIODS = {"day": "每天", "week": "每周", "month": "每月"}
OUTCOMES = {"ok": "正常", "problem": "有问题"}
INSPECTION_OUTCOMES = {"pass": "合格", "fail": "不合格"}


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class PatrolSchedule(Base):
    __tablename__ = "patrol_schedules"
    __table_args__ = (
        CheckConstraint("period IN ('day', 'week', 'month')", "period"),
        CheckConstraint("times >= 1 AND times <= 31", "times"),
        Index(
            "uq_patrol_schedules_rule",
            "layer",
            sql_text("coalesce(site_kind, '')"),
            "role",
            unique=True,
            postgresql_where=sql_text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    layer: Mapped[str] = mapped_column(String(32), nullable=False)
    # A site kind's code (layer `site` only): only sites of that kind.
    site_kind: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    period: Mapped[str] = mapped_column(String(8), nullable=False)
    times: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="1")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=sql_text("true"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class PatrolTask(Base):
    __tablename__ = "patrol_tasks"
    __table_args__ = (
        UniqueConstraint(
            "schedule_id", "place_id", "period_start", "slot", name="uq_patrol_tasks_slot"
        ),
        CheckConstraint("period_end > period_start", "period_range"),
        Index("ix_patrol_tasks_leader_period", "leader_id", "period_start"),
        Index("ix_patrol_tasks_period_end", "period_end"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("patrol_schedules.id", ondelete="RESTRICT"), nullable=False
    )
    place_id: Mapped[int] = mapped_column(
        ForeignKey("places.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    leader_id: Mapped[int] = mapped_column(
        ForeignKey("leaders.id", ondelete="RESTRICT"), nullable=False
    )
    assignment_id: Mapped[int | None] = mapped_column(
        ForeignKey("assignments.id", ondelete="SET NULL")
    )
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    period: Mapped[str] = mapped_column(String(8), nullable=False)
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    slot: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="1")
    created_at: Mapped[datetime] = _created()


class PatrolVisit(Base):
    __tablename__ = "patrol_visits"
    __table_args__ = (
        CheckConstraint("outcome IN ('ok', 'problem')", "outcome"),
        UniqueConstraint("user_id", "idempotency_key", name="uq_patrol_visits_idempotency"),
        Index("ix_patrol_visits_place_at", "place_id", "visited_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("patrol_tasks.id", ondelete="RESTRICT"), unique=True
    )
    place_id: Mapped[int] = mapped_column(
        ForeignKey("places.id", ondelete="RESTRICT"), nullable=False
    )
    leader_id: Mapped[int | None] = mapped_column(
        ForeignKey("leaders.id", ondelete="RESTRICT"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    visited_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    received_at: Mapped[datetime] = _created()
    checkin: Mapped[Any] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False), nullable=True
    )
    distance_m: Mapped[float | None] = mapped_column(Float)
    far: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=sql_text("false"))
    outcome: Mapped[str] = mapped_column(String(8), nullable=False)
    checklist: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=sql_text("'[]'::jsonb")
    )
    note: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    flags: Mapped[list[str]] = mapped_column(
        JSONB, nullable=False, server_default=sql_text("'[]'::jsonb")
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    content_sha256: Mapped[str | None] = mapped_column(String(64))


class PatrolVisitIssue(Base):
    __tablename__ = "patrol_visit_issues"

    visit_id: Mapped[int] = mapped_column(
        ForeignKey("patrol_visits.id", ondelete="CASCADE"), primary_key=True
    )
    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="RESTRICT"), primary_key=True, index=True
    )


class FieldReport(Base):
    """An issue reported from the field app: the idempotency key of the phone's record, so a
    report sent again after a lost answer is stored once."""

    __tablename__ = "field_reports"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_field_reports_idempotency"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(64), nullable=False)
    content_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    # When the phone recorded it (informational: the issue is reported when it arrives).
    recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()


class InspectionPlan(Base):
    """暗访 plan: a seeded sample of places for a date; secret until `done`."""

    __tablename__ = "inspection_plans"
    __table_args__ = (
        CheckConstraint("status IN ('planned', 'done')", "status"),
        CheckConstraint("sample_size >= 1", "sample_size"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    planned_for: Mapped[date] = mapped_column(Date, nullable=False)
    layer: Mapped[str] = mapped_column(String(32), nullable=False)
    site_kind: Mapped[str | None] = mapped_column(String(32))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("admin_areas.id", ondelete="RESTRICT"))
    sample_size: Mapped[int] = mapped_column(Integer, nullable=False)
    seed: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(8), nullable=False, server_default="planned")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    inspector_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class InspectionPlace(Base):
    __tablename__ = "inspection_places"
    __table_args__ = (CheckConstraint("outcome IS NULL OR outcome IN ('pass', 'fail')", "outcome"),)

    plan_id: Mapped[int] = mapped_column(
        ForeignKey("inspection_plans.id", ondelete="CASCADE"), primary_key=True
    )
    place_id: Mapped[int] = mapped_column(
        ForeignKey("places.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    outcome: Mapped[str | None] = mapped_column(String(4))
    category: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    # Sites with standards (issue 15): [{standard_id, code, outcome pass|fail, note}].
    checklist: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=sql_text("'[]'::jsonb")
    )
    negative_list: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=sql_text("false")
    )
    checkin: Mapped[Any] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False), nullable=True
    )
    distance_m: Mapped[float | None] = mapped_column(Float)
    far: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=sql_text("false"))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="RESTRICT"))


class FieldPhoto(Base):
    """A photo of a visit or of a 暗访 result, stored like issue photos (PhotoStore)."""

    __tablename__ = "field_photos"
    __table_args__ = (
        CheckConstraint("capture IS NULL OR capture IN ('camera', 'gallery')", "capture"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    visit_id: Mapped[int | None] = mapped_column(
        ForeignKey("patrol_visits.id", ondelete="CASCADE"), index=True
    )
    plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("inspection_plans.id", ondelete="CASCADE"), index=True
    )
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id", ondelete="RESTRICT"))
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    content_type: Mapped[str] = mapped_column(String(32), nullable=False)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    exif_lon: Mapped[float | None] = mapped_column(Float)
    exif_lat: Mapped[float | None] = mapped_column(Float)
    exif: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    capture: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = _created()


class PhotoCheck(Base):
    """The evidence check of one photo (an issue photo or a field photo): never refuses,
    only flags. `suspicious` rows make the 存疑 list."""

    __tablename__ = "photo_checks"
    __table_args__ = (
        CheckConstraint("(photo_id IS NULL) <> (field_photo_id IS NULL)", "one_photo"),
        Index("ix_photo_checks_suspicious", "checked_at", postgresql_where=sql_text("suspicious")),
        # The first checks of a file, in order (index only): however many copies were uploaded.
        Index("ix_photo_checks_sha256_id", "sha256", "id", postgresql_include=["subject"]),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    photo_id: Mapped[int | None] = mapped_column(
        ForeignKey("photos.id", ondelete="CASCADE"), unique=True
    )
    field_photo_id: Mapped[int | None] = mapped_column(
        ForeignKey("field_photos.id", ondelete="CASCADE"), unique=True
    )
    # What the photo is evidence for: "issue:<id>:<before|after>", "visit:<id>", "plan:<id>".
    subject: Mapped[str] = mapped_column(String(48), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    dhash: Mapped[int | None] = mapped_column(BigInteger)
    dhash_bands: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    flags: Mapped[list[str]] = mapped_column(
        JSONB, nullable=False, server_default=sql_text("'[]'::jsonb")
    )
    details: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=sql_text("'{}'::jsonb")
    )
    suspicious: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=sql_text("false")
    )
    unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="SET NULL"), index=True
    )
    leader_id: Mapped[int | None] = mapped_column(ForeignKey("leaders.id", ondelete="SET NULL"))
    checked_at: Mapped[datetime] = _created()


class PhotoHash(Base):
    """A photo file's dHash, once per file (sha256) however many checks share it: the
    near-duplicate search walks distinct files, so a picture uploaded a thousand times is one
    candidate, not a thousand."""

    __tablename__ = "photo_hashes"
    __table_args__ = (
        # The dHash's four 16-bit quarters as (position × 65536 + quarter); a hash within
        # 7 bits has some quarter within 1 bit (pigeonhole), so `&&` with each quarter and its
        # 1-bit neighbours finds every candidate (evidence.dhash_probes).
        Index("ix_photo_hashes_dhash_bands", "dhash_bands", postgresql_using="gin"),
    )

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    dhash: Mapped[int] = mapped_column(BigInteger, nullable=False)
    dhash_bands: Mapped[list[int]] = mapped_column(ARRAY(Integer), nullable=False)
