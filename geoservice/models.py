"""Non-layer tables: places (the parent row of every layer feature), admin areas, units,
leaders, assignments, users, API tokens, issues, issue events and photos.

Every layer feature is a row in `places` plus a row in its layer's own table (joined-table
inheritance). Assignments and issues reference `places`, so the database itself refuses to
delete a feature that still has an assignment or an issue: no orphans.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
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
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from geoservice.db import Base


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def _updated() -> Mapped[datetime]:
    return mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class Place(Base):
    """The common part of every feature of every layer (grid, road, market, compound …)."""

    __tablename__ = "places"
    __table_args__ = (UniqueConstraint("layer", "code", name="uq_places_layer_code"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    layer: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    code: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __mapper_args__ = {"polymorphic_on": "layer"}


class AdminArea(Base):
    """街道/镇, 社区/村 and the county itself: the admin hierarchy grids belong to."""

    __tablename__ = "admin_areas"
    __table_args__ = (
        CheckConstraint("level IN ('city', 'district', 'county', 'street', 'community')", "level"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    code: Mapped[str] = mapped_column(String(15), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("admin_areas.id", ondelete="RESTRICT"), index=True
    )
    geom: Mapped[Any] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    parent: Mapped[AdminArea | None] = relationship(remote_side=[id])


class Unit(Base):
    """责任单位 / 包保单位; `is_lead` marks a 牵头单位."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    is_lead: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Leader(Base):
    """包保领导: the named official who answers for places."""

    __tablename__ = "leaders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50), nullable=False, index=True)
    title: Mapped[str] = mapped_column(String(100), nullable=False, server_default="")
    unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )
    phone: Mapped[str | None] = mapped_column(String(20))
    level: Mapped[str] = mapped_column(String(16), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    unit: Mapped[Unit | None] = relationship()


class Assignment(Base):
    """A leader answering for a place in a role over [valid_from, valid_to).

    Reassigning closes the old row (valid_to) and opens a new one: history is never
    overwritten.
    """

    __tablename__ = "assignments"
    __table_args__ = (
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", "valid_range"),
        Index("ix_assignments_place_period", "place_id", "valid_from", "valid_to"),
        # One active primary leader per place.
        Index(
            "uq_assignments_active_primary",
            "place_id",
            unique=True,
            postgresql_where=text("is_primary AND valid_to IS NULL"),
        ),
        # The same leader does not hold the same role on the same place twice at once.
        Index(
            "uq_assignments_active_role",
            "place_id",
            "leader_id",
            "role",
            unique=True,
            postgresql_where=text("valid_to IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    leader_id: Mapped[int] = mapped_column(
        ForeignKey("leaders.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    place_id: Mapped[int] = mapped_column(
        ForeignKey("places.id", ondelete="RESTRICT"), nullable=False
    )
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    is_primary: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    valid_from: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()

    leader: Mapped[Leader] = relationship()
    place: Mapped[Place] = relationship()


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role IN ('admin', 'planner', 'leader', 'inspector', 'viewer', 'integration')", "role"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    display_name: Mapped[str] = mapped_column(String(100), nullable=False, server_default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("admin_areas.id", ondelete="RESTRICT"))
    leader_id: Mapped[int | None] = mapped_column(ForeignKey("leaders.id", ondelete="RESTRICT"))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    failed_logins: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    area: Mapped[AdminArea | None] = relationship()
    leader: Mapped[Leader | None] = relationship()


class ApiToken(Base):
    """An API token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    prefix: Mapped[str] = mapped_column(String(12), nullable=False)
    label: Mapped[str] = mapped_column(String(64), nullable=False, server_default="")
    scopes: Mapped[list[str] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()


class Issue(Base):
    """A problem found on the street (问题), tracked until verified fixed."""

    __tablename__ = "issues"
    __table_args__ = (
        CheckConstraint(
            "status IN ('reported', 'accepted', 'rejected', 'dispatched', 'in_progress',"
            " 'fixed', 'closed')",
            "status",
        ),
        Index("ix_issues_status_deadline", "status", "deadline"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    geom: Mapped[Any] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=True), nullable=False
    )
    category: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    severity: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="1")
    negative_list: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="reported")
    reported_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), index=True
    )
    reported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rework_count: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    # Attribution, as recorded at report time (responsibility is historical).
    primary_place_id: Mapped[int | None] = mapped_column(
        ForeignKey("places.id", ondelete="RESTRICT"), index=True
    )
    grid_id: Mapped[int | None] = mapped_column(
        ForeignKey("places.id", ondelete="RESTRICT"), index=True
    )
    leader_id: Mapped[int | None] = mapped_column(
        ForeignKey("leaders.id", ondelete="RESTRICT"), index=True
    )
    unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )
    attribution: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    relapse_of_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="RESTRICT"))
    duplicate_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("issues.id", ondelete="RESTRICT")
    )
    updated_at: Mapped[datetime] = _updated()


# Links between issues (merged duplicates, relapses) are looked up from the target side.
Index(
    "ix_issues_duplicate_of",
    Issue.__table__.c.duplicate_of_id,
    postgresql_where=text("duplicate_of_id IS NOT NULL"),
)
Index(
    "ix_issues_relapse_of",
    Issue.__table__.c.relapse_of_id,
    postgresql_where=text("relapse_of_id IS NOT NULL"),
)
# The unassigned queue (待派遣) is read often and is small.
Index(
    "ix_issues_unassigned",
    Issue.__table__.c.reported_at,
    postgresql_where=text("leader_id IS NULL AND status IN ('reported', 'accepted')"),
)


class IssueEvent(Base):
    """One state change (or note) of an issue: who, when, from, to, note."""

    __tablename__ = "issue_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), nullable=False, index=True
    )
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class Photo(Base):
    """A photo of an issue (整改前 before / 整改后 after), stored on disk by content hash."""

    __tablename__ = "photos"
    __table_args__ = (CheckConstraint("kind IN ('before', 'after')", "kind"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), nullable=False, index=True
    )
    event_id: Mapped[int | None] = mapped_column(ForeignKey("issue_events.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    content_type: Mapped[str] = mapped_column(String(32), nullable=False)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    exif_lon: Mapped[float | None] = mapped_column(Float)
    exif_lat: Mapped[float | None] = mapped_column(Float)
    exif: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()
