"""Non-layer tables: places (the parent row of every layer feature), admin areas, units,
leaders, assignments, users, API tokens, issues, issue events, photos, the audit log and
the rate-limit counters.

Every layer feature is a row in `places` plus a row in its layer's own table (joined-table
inheritance). Assignments and issues reference `places`, so the database itself refuses to
delete a feature that still has an assignment or an issue: no orphans.
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
    Double,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

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
        # Whether any area is marked (geoservice.areas.service_area, on every report).
        Index("ix_admin_areas_service_area", "id", postgresql_where=text("service_area")),
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
    # Marked areas make up the service area (flask service-area --use); none marked: derived.
    service_area: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    parent: Mapped[AdminArea | None] = relationship(remote_side=[id])


class AreaLinkDecision(Base):
    """A planner's choice for a child whose code and geometry name different parents.

    `kind` is `area` (an admin area's parent) or a layer name (a feature's area link, e.g. a
    grid's community); `accept` says which side wins: `code` (the parent its code names) or
    `geometry` (the parent it overlaps most). Rows are never updated: the latest per
    (kind, child_code) is in force, earlier ones are the history.
    """

    __tablename__ = "area_link_decisions"
    __table_args__ = (
        CheckConstraint("accept IN ('code', 'geometry')", "accept"),
        Index("ix_area_link_decisions_child", "kind", "child_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    child_code: Mapped[str] = mapped_column(String(64), nullable=False)
    accept: Mapped[str] = mapped_column(String(16), nullable=False)
    parent_code: Mapped[str | None] = mapped_column(String(64))  # the parent it gave then
    actor: Mapped[str] = mapped_column(String(64), nullable=False, server_default="system")
    note: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime] = _created()


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
    """包保领导: the named official who answers for places.

    `is_unit_head` marks the head of the leader's unit (单位负责人): a head's 我的包保 shows
    every place held by the unit's leaders, not only their own.
    """

    __tablename__ = "leaders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50), nullable=False, index=True)
    title: Mapped[str] = mapped_column(String(100), nullable=False, server_default="")
    unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )
    phone: Mapped[str | None] = mapped_column(String(20))
    level: Mapped[str] = mapped_column(String(16), nullable=False)
    is_unit_head: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
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
    # Set when an admin resets the password: the next sign-in goes to the password page.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
    # Part of the session stamp: signing out bumps it, so a copied cookie of any session of
    # the account stops working (server-side revocation of signed cookies).
    session_generation: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
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
    # None: everything the owner's role may do; a list narrows it (see
    # geoservice.accounts.permissions).
    scopes: Mapped[list[str] | None] = mapped_column(JSONB)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class AuditEntry(Base):
    """One write: who, when, what (entity and id), the state before and after, from where."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # Kept as text so the entry still names its author if the account is renamed or removed.
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    entity_type: Mapped[str] = mapped_column(String(64), nullable=False)
    entity_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    ip: Mapped[str | None] = mapped_column(String(45))


class RateCounter(Base):
    """A fixed-window counter (login failures per IP, writes per account …).

    Kept in the database so every gunicorn worker sees the same counts.
    """

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    expires_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, index=True
    )


# Issues neither closed nor rejected (a closed one without closed_at counts as not closed).
# Events the rankings count on their own: handovers past the deadline, extension requests
# and decisions.
RULE_EVENT = "(holder_change AND prev_deadline < at) OR (data ->> 'action') LIKE 'extension%'"
UNCLOSED = "status NOT IN ('closed', 'rejected') OR (status = 'closed' AND closed_at IS NULL)"
# The columns of an issue the rankings read besides its dates (grouping keys, deadline and the
# holder at a period end, relapse, duplicate): included in the candidate indexes.
RANKING_COLUMNS = [
    "id",
    "deadline",
    "holder_since",
    "relapse_of_id",
    "duplicate_of_id",
    "leader_id",
    "unit_id",
    "grid_id",
    "primary_place_id",
    "category",
    "source",
]


class Issue(Base):
    """A problem found on the street (问题), tracked until verified fixed.

    Partitioned by month of `reported_at` (migration 0026, geoservice.partitions): the table's
    primary key is (id, reported_at), the ORM's identity stays `id` (unique by its sequence).
    References to issues are trigger-checked, not foreign keys (see geoservice.partitions)."""

    __tablename__ = "issues"
    __table_args__ = (
        PrimaryKeyConstraint("id", "reported_at"),
        CheckConstraint(
            "status IN ('reported', 'accepted', 'rejected', 'dispatched', 'in_progress',"
            " 'fixed', 'closed')",
            "status",
        ),
        Index("ix_issues_status_deadline", "status", "deadline"),
        Index("ix_issues_reported_by", "reported_by_id", "reported_at"),
        # Rankings skip issues closed or rejected before a period; these find the rest, with
        # every column a ranking reads of them (index-only scans: geoservice.ranking.ranking).
        Index(
            "ix_issues_closed_at",
            "closed_at",
            postgresql_where=text("status = 'closed'"),
            postgresql_include=["reported_at", *RANKING_COLUMNS],
        ),
        Index(
            "ix_issues_unclosed_reported_at",
            "reported_at",
            postgresql_where=text(UNCLOSED),
            postgresql_include=RANKING_COLUMNS,
        ),
        Index(
            "ix_issues_rejected_updated_at",
            "updated_at",
            postgresql_where=text("status = 'rejected'"),
            postgresql_include=["reported_at", *RANKING_COLUMNS],
        ),
        # Issue tiles counted over the rows (leader, unit, overdue filters) read these alone.
        Index("ix_issues_leader_tiles", "leader_id", postgresql_include=["status", "geom"]),
        Index("ix_issues_unit_tiles", "unit_id", postgresql_include=["status", "geom"]),
        Index(
            "ix_issues_open_deadline_tiles",
            "deadline",
            postgresql_include=["status", "geom"],
            postgresql_where=text(
                "status IN ('reported', 'accepted', 'dispatched', 'in_progress', 'fixed')"
            ),
        ),
        {"postgresql_partition_by": "RANGE (reported_at)"},
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"primary_key": [cls.__table__.c.id]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
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
    # When leader, unit or deadline last changed after the report (改派, 延期, reattribution…):
    # the event of that change records the values before and after it (IssueEvent.holder_*).
    # NULL: never changed, the columns above held since the report.
    holder_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
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


class RecentWrite(Base):
    """Accounts that wrote lately (geoservice.db, replica routing): their reads go to the
    primary for REPLICA_READ_AFTER_WRITE_SECONDS. Unlogged: neither replicated nor worth
    keeping across a crash. `account`: "u:<user id>" or "t:<token hash prefix>"."""

    __tablename__ = "recent_writes"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    account: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class SharedAnswer(Base):
    """Answers allowed to lag writes (rankings), shared by the worker processes: the one that
    computed an answer leaves it here for the others (geoservice/httpcache.py). Unlogged: a
    cache, neither replicated nor worth keeping across a crash. `key`: a digest of the request
    (path, arguments, format, audience); `body`: the answer, zlib-compressed."""

    __tablename__ = "shared_answers"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, nullable=False)
    clock_window: Mapped[int | None] = mapped_column(BigInteger)
    made: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    etag: Mapped[str] = mapped_column(String(80), nullable=False)
    mimetype: Mapped[str] = mapped_column(String(120), nullable=False)
    headers: Mapped[list] = mapped_column(JSONB, nullable=False)
    body: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class IssueEvent(Base):
    """One state change (or note) of an issue: who, when, from, to, note.

    Partitioned by month of `at` (migration 0026): primary key (id, at), ORM identity `id`."""

    __tablename__ = "issue_events"
    __table_args__ = (
        PrimaryKeyConstraint("id", "at"),
        # Status at a moment = the issue's last state change before it (rankings);
        # covering, so rankings read the index only.
        Index(
            "ix_issue_events_issue_at",
            "issue_id",
            "at",
            postgresql_include=["id", "from_status", "to_status"],
        ),
        # A period's state changes, for all issues at once (rankings).
        Index(
            "ix_issue_events_at", "at", postgresql_include=["issue_id", "from_status", "to_status"]
        ),
        # Who held an issue, with which deadline, at a past moment (rankings of closed periods):
        # the first change after the moment tells the values before it.
        Index(
            "ix_issue_events_holder",
            "issue_id",
            "at",
            postgresql_include=["id", "prev_leader_id", "prev_unit_id", "prev_deadline"],
            postgresql_where=text("holder_change"),
        ),
        # A period's handovers and extension events, for all issues at once (rankings).
        Index(
            "ix_issue_events_rule_at",
            "at",
            postgresql_where=text(RULE_EVENT),
        ),
        {"postgresql_partition_by": "RANGE (at)"},
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"primary_key": [cls.__table__.c.id]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
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
    # Set on the events that change the issue's leader, unit or deadline (交办, 改派, 延期批准,
    # 退回确权, reattribution): the values before and after. History, so no foreign keys.
    holder_change: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
    leader_id: Mapped[int | None] = mapped_column(BigInteger)
    unit_id: Mapped[int | None] = mapped_column(BigInteger)
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    prev_leader_id: Mapped[int | None] = mapped_column(BigInteger)
    prev_unit_id: Mapped[int | None] = mapped_column(BigInteger)
    prev_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


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


class IssueTileCount(Base):
    """Issues per Web-Mercator cell (tile x/y at zoom `level`) and status, kept exact by
    triggers on `issues` (see the migration): low-zoom tiles and unfiltered counts read this
    instead of scanning a million issues. `sx`/`sy` sum longitudes/latitudes (centroids).
    A key may have several rows (deltas, migration 0028): always sum them."""

    __tablename__ = "issue_tile_counts"
    __table_args__ = (
        Index("ix_issue_tile_counts_key", "level", "cx", "cy", "status"),
        # Strips wide in cx and a few cells high (a viewport's edges), and min/max cy of the
        # finest level (the issues' extent): migration 0044.
        Index("ix_issue_tile_counts_rows", "level", "cy", "cx"),
        # Room for the counters' updates to stay on their page (HOT), so the rows stay in
        # the key order the migration and the seed CLUSTER them in.
        {"postgresql_with": {"fillfactor": 80}},
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # Not unique (delta rows, migration 0028): the ORM needs some key; nothing loads these.
        return {"primary_key": [cls.__table__.c[k] for k in ("level", "cx", "cy", "status")]}

    level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    cx: Mapped[int] = mapped_column(Integer, nullable=False)
    cy: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    n: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sx: Mapped[float] = mapped_column(Double, nullable=False)
    sy: Mapped[float] = mapped_column(Double, nullable=False)


class IssueTileFacet(Base):
    """Issues per Web-Mercator cell (levels 6–18), report day (Asia/Shanghai), status,
    category, source and deadline day, kept exact by statement-level triggers on `issues` (see the
    migration): low-zoom issue tiles filtered by these read it instead of the issues.
    A key may have several rows (deltas, migration 0028): always sum them."""

    __tablename__ = "issue_tile_facets"
    __table_args__ = (
        Index(
            "ix_issue_tile_facets_category",
            *("level", "category", "cx", "cy", "day", "status", "source", "deadline_day"),
        ),
        Index(
            "ix_issue_tile_facets_key",
            *("level", "cx", "cy", "day", "status", "category", "source", "deadline_day"),
        ),
        Index(
            "ix_issue_tile_facets_open_deadline",
            *("level", "cx", "cy", "deadline_day"),
            postgresql_include=["status", "category", "source", "day", "n", "sx", "sy"],
            postgresql_where=text(
                "status IN ('reported', 'accepted', 'dispatched', 'in_progress', 'fixed')"
            ),
        ),
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        keys = ("level", "cx", "cy", "day", "status", "category", "source", "deadline_day")
        return {"primary_key": [cls.__table__.c[k] for k in keys]}

    level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    cx: Mapped[int] = mapped_column(Integer, nullable=False)
    cy: Mapped[int] = mapped_column(Integer, nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    category: Mapped[str] = mapped_column(String(32), nullable=False)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    # The deadline's day (Asia/Shanghai; 'infinity' without one): `overdue` from the facets
    # (migration 0032).
    deadline_day: Mapped[date] = mapped_column(Date, nullable=False)
    n: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sx: Mapped[float] = mapped_column(Double, nullable=False)
    sy: Mapped[float] = mapped_column(Double, nullable=False)


class IssueTileDay(Base):
    """Issues per Web-Mercator cell (levels 8, 10, 12, 14), report day (Asia/Shanghai), status
    and category, kept exact by statement-level triggers on `issues` (migration 0039): low-zoom
    issue tiles of whole report days and/or a category read it instead of the facets.
    A key may have several rows (deltas, migration 0028): always sum them."""

    __tablename__ = "issue_tile_days"
    __table_args__ = (
        Index(
            "ix_issue_tile_days_key",
            *("level", "cx", "cy", "day", "status", "category"),
            postgresql_include=["n", "sx", "sy"],
        ),
        Index(
            "ix_issue_tile_days_category",
            *("level", "category", "cx", "cy", "day", "status"),
            postgresql_include=["n", "sx", "sy"],
        ),
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        keys = ("level", "cx", "cy", "day", "status", "category")
        return {"primary_key": [cls.__table__.c[k] for k in keys]}

    level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    cx: Mapped[int] = mapped_column(Integer, nullable=False)
    cy: Mapped[int] = mapped_column(Integer, nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    category: Mapped[str] = mapped_column(String(32), nullable=False)
    n: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sx: Mapped[float] = mapped_column(Double, nullable=False)
    sy: Mapped[float] = mapped_column(Double, nullable=False)


class IssueTileHolder(Base):
    """Issues per Web-Mercator cell (levels 8, 10, 12), status, responsible unit and leader
    (0: none), kept exact by statement-level triggers on `issues` (migration 0036): low-zoom
    issue tiles filtered by unit or leader (责任单位 / 包保领导) read it instead of the issues.
    A key may have several rows (deltas, migration 0028): always sum them."""

    __tablename__ = "issue_tile_holders"
    __table_args__ = (
        Index(
            "ix_issue_tile_holders_unit",
            *("level", "unit_id", "cx", "cy", "status", "leader_id"),
            postgresql_include=["n", "sx", "sy"],
        ),
        Index(
            "ix_issue_tile_holders_leader",
            *("level", "leader_id", "cx", "cy", "status", "unit_id"),
            postgresql_include=["n", "sx", "sy"],
        ),
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        keys = ("level", "cx", "cy", "status", "unit_id", "leader_id")
        return {"primary_key": [cls.__table__.c[k] for k in keys]}

    level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    cx: Mapped[int] = mapped_column(Integer, nullable=False)
    cy: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    # 0 when the issue has no unit / no leader (ids start at 1): the key has no NULLs.
    unit_id: Mapped[int] = mapped_column(Integer, nullable=False)
    leader_id: Mapped[int] = mapped_column(Integer, nullable=False)
    n: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sx: Mapped[float] = mapped_column(Double, nullable=False)
    sy: Mapped[float] = mapped_column(Double, nullable=False)


class TileChange(Base):
    """One statement that changed what tiles draw ('issues' or 'layers'), inserted by
    triggers; max(id) per layer is the generation tile caches key on (catalogue/tilecache)."""

    __tablename__ = "tile_changes"
    __table_args__ = (Index("ix_tile_changes_layer_id", "layer", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    layer: Mapped[str] = mapped_column(String(16), nullable=False)


class IssueCellChange(Base):
    """One statement that wrote issues in one level-15 cell (about 1 km), inserted by triggers
    (migration 0043; (-1, -1): a TRUNCATE): the generation of an area, for caches of issue pages
    and tiles by area (geoservice/httpcache.py, `area_generation`)."""

    __tablename__ = "issue_cell_changes"
    __table_args__ = (
        Index("ix_issue_cell_changes_cell", "cx", "cy", "id", postgresql_include=["first_issue"]),
        Index("ix_issue_cell_changes_first_reported", "first_reported", postgresql_include=["id"]),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    cx: Mapped[int] = mapped_column(Integer, nullable=False)
    cy: Mapped[int] = mapped_column(Integer, nullable=False)
    # The lowest issue id the statement wrote in this cell (0: every id; migration 0045).
    first_issue: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    # The earliest reported_at of those rows (-infinity: any time; migration 0046).
    first_reported: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("'-infinity'")
    )


class EventChange(Base):
    """One row per statement writing issue_events: the earliest `at` of the rows it wrote
    (-infinity for a TRUNCATE), kept by triggers (migration 0046): answers about the time
    before a moment (a closed period's rankings) stay valid while none appears before it
    (geoservice/httpcache.py, `written_before`)."""

    __tablename__ = "event_changes"
    __table_args__ = (Index("ix_event_changes_first_at", "first_at", postgresql_include=["id"]),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class IssueFactChange(Base):
    """One row per statement writing issues that inserted or deleted rows, or changed a column
    a ranking reads of them (`RANKING_COLUMNS`, `reported_at`): the earliest `reported_at` of
    those rows (-infinity for a TRUNCATE), kept by triggers (migration 0048); a statement that
    only hands issues over (holder columns changed, `holder_since` moved forward) is dated by
    the latest of each issue's report time and new `holder_since` instead (migration 0057). A
    status change, a closure, a note leave it alone: what they change of a past week comes with
    an event dated in it (`event_changes`). The snapshots of closed weeks, months and quarters
    are filed under it (geoservice/ranking/snapshot.py)."""

    __tablename__ = "issue_fact_changes"
    __table_args__ = (
        Index("ix_issue_fact_changes_first_reported", "first_reported", postgresql_include=["id"]),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    first_reported: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class LayerFeatureBox(Base):
    """A polygon / line layer feature's bbox, kept by triggers on its layer table (migration
    0035): low-zoom layer tiles choose what to draw and fold from these, reading only the
    geometries they draw (catalogue/tiles.py)."""

    __tablename__ = "layer_feature_boxes"
    __table_args__ = (
        *(
            Index(
                f"ix_layer_feature_boxes_{table}",
                "box",
                postgresql_using="gist",
                postgresql_where=text(f"layer = '{table}'"),
            )
            for table in ("grids", "roads", "compounds", "markets", "sites")
        ),
        Index("ix_layer_feature_boxes_span", "layer", "span"),
    )

    layer: Mapped[str] = mapped_column(String(32), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    x0: Mapped[float] = mapped_column(Double, nullable=False)
    y0: Mapped[float] = mapped_column(Double, nullable=False)
    x1: Mapped[float] = mapped_column(Double, nullable=False)
    y1: Mapped[float] = mapped_column(Double, nullable=False)
    point: Mapped[bool] = mapped_column(Boolean, nullable=False)
    span: Mapped[float] = mapped_column(Double, nullable=False)  # larger side; points: ∞
    cx: Mapped[int] = mapped_column(Integer, nullable=False)  # level-17 cell of the centre
    cy: Mapped[int] = mapped_column(Integer, nullable=False)
    box: Mapped[Any] = mapped_column(Geometry(srid=4326, spatial_index=False), nullable=False)


class LayerFeatureTile(Base):
    """A polygon / line layer feature ready to draw at a low zoom in its home tile (the one
    holding its bbox centre): its ST_AsMVTGeom output there and its columns but the geometry,
    kept by triggers on its layer table (migration 0050); low-zoom tiles read their home rows
    instead of looking each drawn feature up and computing it (catalogue/tiles.py)."""

    __tablename__ = "layer_feature_tiles"
    __table_args__ = (Index("ix_layer_feature_tiles_tile", "layer", "z", "x", "y", "size"),)

    layer: Mapped[str] = mapped_column(String(32), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    z: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    x: Mapped[int] = mapped_column(Integer, nullable=False)  # the home tile at zoom z
    y: Mapped[int] = mapped_column(Integer, nullable=False)
    size: Mapped[float] = mapped_column(Double, nullable=False)  # the tile's px × pixel_deg
    geom: Mapped[Any] = mapped_column(Geometry(spatial_index=False), nullable=False)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)


class Publication(Base):
    """A published 通报, frozen: the workbook bytes and the figures as published, with the hash
    of its inputs (geoservice.ranking.publications). Never updated; republishing adds a version."""

    __tablename__ = "publications"
    __table_args__ = (
        UniqueConstraint("period_kind", "period_label", "version", name="uq_publications_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    period_label: Mapped[str] = mapped_column(String(64), nullable=False)
    period_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    period_to: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    title: Mapped[str] = mapped_column(Text, nullable=False)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    inputs_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    figures: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    figures_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    filename: Mapped[str] = mapped_column(String(200), nullable=False)
    workbook: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    workbook_sha256: Mapped[str] = mapped_column(String(64), nullable=False)


class AreaAssignment(Base):
    """A leader answering for a whole 社区 or 街道 (e.g. 社区书记, 街道包保领导) over
    [valid_from, valid_to): the last steps of the responsibility fallback chain
    (geoservice.issues.attribution, RESPONSIBILITY_FALLBACK)."""

    __tablename__ = "area_assignments"
    __table_args__ = (
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", "valid_range"),
        Index("ix_area_assignments_area_period", "area_id", "valid_from", "valid_to"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_id: Mapped[int] = mapped_column(
        ForeignKey("admin_areas.id", ondelete="RESTRICT"), nullable=False
    )
    leader_id: Mapped[int] = mapped_column(
        ForeignKey("leaders.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    role: Mapped[str] = mapped_column(String(50), nullable=False, server_default="包保责任人")
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()


class RoutingRule(Base):
    """条块 routing: issues of `category` (optionally only within admin area `area_id` — the
    grid's community or street — and/or on places of `layer`) go to unit `unit_id` as 牵头 or
    配合, over [valid_from, valid_to). The place's 包保 leader is informed, or co-responsible
    (`co_responsible`). See geoservice.issues.routing_rules."""

    __tablename__ = "routing_rules"
    __table_args__ = (
        CheckConstraint("role IN ('lead', 'assist')", "role"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", "valid_range"),
        Index("ix_routing_rules_category", "category", "valid_from"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(String(32), nullable=False)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("admin_areas.id", ondelete="RESTRICT"))
    layer: Mapped[str | None] = mapped_column(String(32))
    unit_id: Mapped[int] = mapped_column(
        ForeignKey("units.id", ondelete="RESTRICT"), nullable=False
    )
    role: Mapped[str] = mapped_column(String(8), nullable=False, server_default="lead")
    co_responsible: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
    note: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()


class RuleSetting(Base):
    """One effective-dated value of a city rule (weights, the 85 line, 后N名, category time
    limits…): in force from `valid_from` until the next value of the same key
    (geoservice.ranking.vocabularies). Never updated: a change is a new row."""

    __tablename__ = "rule_settings"
    __table_args__ = (UniqueConstraint("key", "valid_from", name="uq_rule_settings_key_from"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    value: Mapped[Any] = mapped_column(JSONB, nullable=False)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()


class RankingSnapshot(Base):
    """A closed week's per-issue ranking facts, stored once (geoservice.ranking.snapshot): the
    rows are `ranking_snapshot_rows`. Used only while `generation` equals the week's current
    `httpcache.written_before(end)` values and `definition` the digest of the code's own
    statement that built them; written only by `ranking.build_snapshot` (CLI, worker)."""

    __tablename__ = "ranking_snapshots"
    __table_args__ = (
        UniqueConstraint("period_start", "period_end", name="uq_ranking_snapshots_period"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    generation: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False)
    definition: Mapped[str] = mapped_column(String(64), nullable=False)
    rows: Mapped[int] = mapped_column(Integer, nullable=False)
    built_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    build_seconds: Mapped[float] = mapped_column(Double, nullable=False)


class RankingSnapshotRow(Base):
    """One row of the pipeline's per-issue indicators (`ind` in geoservice.ranking.ranking) of
    a snapshot: kind 'f' an issue's facts at the period end, 'h' a handover past the deadline
    (keys: the holder before it; counted for leader/unit when `h_leader`/`h_unit`), 'x' an
    extension event. `k_<grouping>`: the row's key in each grouping."""

    __tablename__ = "ranking_snapshot_rows"
    __table_args__ = (
        CheckConstraint("kind IN ('f', 'h', 'x')", "kind"),
        # The 通报's overdue list of a snapshot: index-only.
        Index(
            "ix_ranking_snapshot_rows_overdue",
            "snapshot_id",
            "issue_id",
            postgresql_include=["deadline", "reported_at"],
            postgresql_where=text("overdue_end"),
        ),
    )

    snapshot_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("ranking_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    kind: Mapped[str] = mapped_column(String(1), nullable=False)
    k_leader: Mapped[int | None] = mapped_column(BigInteger)
    k_unit: Mapped[int | None] = mapped_column(BigInteger)
    k_grid: Mapped[int | None] = mapped_column(BigInteger)
    k_community: Mapped[int | None] = mapped_column(BigInteger)
    k_street: Mapped[int | None] = mapped_column(BigInteger)
    k_layer: Mapped[str | None] = mapped_column(Text)
    k_category: Mapped[str | None] = mapped_column(Text)
    k_source: Mapped[str | None] = mapped_column(Text)
    h_leader: Mapped[bool] = mapped_column(Boolean, nullable=False)
    h_unit: Mapped[bool] = mapped_column(Boolean, nullable=False)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received: Mapped[bool] = mapped_column(Boolean, nullable=False)
    should_close: Mapped[bool] = mapped_column(Boolean, nullable=False)
    closed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    closed_on_time: Mapped[bool] = mapped_column(Boolean, nullable=False)
    closed_late: Mapped[bool] = mapped_column(Boolean, nullable=False)
    open_end: Mapped[bool] = mapped_column(Boolean, nullable=False)
    overdue_end: Mapped[bool] = mapped_column(Boolean, nullable=False)
    handled: Mapped[bool] = mapped_column(Boolean, nullable=False)
    reworked: Mapped[bool] = mapped_column(Boolean, nullable=False)
    relapses: Mapped[bool] = mapped_column(Boolean, nullable=False)
    rejected: Mapped[bool] = mapped_column(Boolean, nullable=False)
    handed_overdue: Mapped[bool] = mapped_column(Boolean, nullable=False)
    extension_requested: Mapped[bool] = mapped_column(Boolean, nullable=False)
    extension_granted: Mapped[bool] = mapped_column(Boolean, nullable=False)
    extension_refused: Mapped[bool] = mapped_column(Boolean, nullable=False)
    hours: Mapped[Any] = mapped_column(Numeric, nullable=True)


class RankingSnapshotFigure(Base):
    """A grouping's counts from a snapshot's rows (`ranking_snapshot_rows`), as the pipeline's
    aggregate gives them (one row per key, in key order `n`): what a closed week's ranking
    reads. `k_int` or `k_text` by the grouping's key type."""

    __tablename__ = "ranking_snapshot_figures"

    snapshot_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("ranking_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    grouping: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    k_int: Mapped[int | None] = mapped_column(BigInteger)
    k_text: Mapped[str | None] = mapped_column(Text)
    received: Mapped[int] = mapped_column(BigInteger, nullable=False)
    should_close: Mapped[int] = mapped_column(BigInteger, nullable=False)
    closed: Mapped[int] = mapped_column(BigInteger, nullable=False)
    closed_on_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    closed_late: Mapped[int] = mapped_column(BigInteger, nullable=False)
    open_end: Mapped[int] = mapped_column(BigInteger, nullable=False)
    overdue_end: Mapped[int] = mapped_column(BigInteger, nullable=False)
    handled: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reworked: Mapped[int] = mapped_column(BigInteger, nullable=False)
    relapses: Mapped[int] = mapped_column(BigInteger, nullable=False)
    rejected: Mapped[int] = mapped_column(BigInteger, nullable=False)
    handed_overdue: Mapped[int] = mapped_column(BigInteger, nullable=False)
    extension_requested: Mapped[int] = mapped_column(BigInteger, nullable=False)
    extension_granted: Mapped[int] = mapped_column(BigInteger, nullable=False)
    extension_refused: Mapped[int] = mapped_column(BigInteger, nullable=False)
    avg_hours: Mapped[Any] = mapped_column(Numeric, nullable=True)
    median_hours: Mapped[float | None] = mapped_column(Double)


class IssueEventRollup(Base):
    """Per issue and local day ('d') or ISO week ('w', keyed by its Monday), the summary of its
    state changes the rankings read (geoservice.ranking.rollup). Written only by the triggers
    on issue_events (migration 0021), never by the application."""

    __tablename__ = "issue_event_rollup"
    __table_args__ = (
        CheckConstraint("grain IN ('d', 'w')", "grain"),
        Index(
            "ix_issue_event_rollup_issue",
            *("issue_id", "grain", "start"),
            postgresql_include=["last_status"],
        ),
    )

    grain: Mapped[str] = mapped_column(String(1), primary_key=True)
    start: Mapped[date] = mapped_column(Date, primary_key=True)
    issue_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_status: Mapped[str] = mapped_column(String(16), nullable=False)
    last_close: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reworked: Mapped[bool] = mapped_column(Boolean, nullable=False)
    handled: Mapped[bool] = mapped_column(Boolean, nullable=False)
    rejected: Mapped[bool] = mapped_column(Boolean, nullable=False)
