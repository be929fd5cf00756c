"""Tables of the citizens package: public reports (ticket, private link, phone), the public
side of an issue (sensitive, published on the 曝光台, "me too" weight), approved photos,
回访 answers, and spent proof-of-work nonces."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geoservice.db import Base

FEEDBACK_ANSWERS: dict[str, str] = {
    "satisfied": "满意",
    "basically": "基本满意",
    "unsatisfied": "不满意",
}
# 群众满意率 counts these answers as satisfied (满意 + 基本满意, as 12345 hotlines count).
SATISFIED_ANSWERS: tuple[str, ...] = ("satisfied", "basically")


class CitizenReport(Base):
    """A report filed without an account: its ticket, the hash of its private link's token
    and the reporter's phone (planners only)."""

    __tablename__ = "citizen_reports"

    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True
    )
    ticket: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class IssuePublic(Base):
    """The public side of an issue, set by planners: rounded position, 曝光台, "me too"."""

    __tablename__ = "issue_public"

    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True
    )
    sensitive: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    published: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    metoo_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )


class PhotoApproval(Base):
    """A photo a planner approved for the public pages (no row: never shown publicly)."""

    __tablename__ = "photo_approvals"

    photo_id: Mapped[int] = mapped_column(
        ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True
    )
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class CitizenFeedback(Base):
    """One 回访 answer to one 销号 (the close event it answers); 不满意 waits for a planner's
    decision (reopen or keep closed)."""

    __tablename__ = "citizen_feedback"
    __table_args__ = (
        CheckConstraint("answer IN ('satisfied', 'basically', 'unsatisfied')", "answer"),
        CheckConstraint("decision IS NULL OR decision IN ('reopened', 'kept')", "decision"),
        Index("ix_citizen_feedback_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), nullable=False, index=True
    )
    close_event_id: Mapped[int] = mapped_column(
        ForeignKey("issue_events.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    answer: Mapped[str] = mapped_column(String(16), nullable=False)
    comment: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    channel: Mapped[str] = mapped_column(String(16), nullable=False, server_default="ticket")
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    decision: Mapped[str | None] = mapped_column(String(16))
    decision_note: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PublishedBoard(Base):
    """A 红黑榜 of units the office published with a 通报: a snapshot of the period's unit
    ranking (names and scores only), shown on the public pages."""

    __tablename__ = "published_boards"
    __table_args__ = (UniqueConstraint("kind", "label", name="uq_published_boards_kind_label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    label: Mapped[str] = mapped_column(String(32), nullable=False)
    title: Mapped[str] = mapped_column(String(100), nullable=False)
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    board: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    published_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class SpentChallenge(Base):
    """A proof-of-work nonce already used (a challenge is good for one write)."""

    __tablename__ = "spent_challenges"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, index=True
    )
