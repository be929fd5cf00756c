"""Tables of the notifications domain: channels, people's preferences, unit contacts, the
outbox (messages × deliveries), integration callbacks and external tickets.

The outbox is two tables: a *message* is what happened and whom it is for (written in the
transaction of the issue event that causes it); a *delivery* is that message on one channel
to one address, with its own state, attempts and next try. `delivery_key` is unique: the same
message is never queued twice on the same channel to the same address.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geoservice.db import Base

CHANNEL_KINDS: dict[str, str] = {
    "email": "电子邮件（SMTP）",
    "wecom": "企业微信群机器人",
    "dingtalk": "钉钉群机器人",
    "webhook": "通用 Webhook（HMAC-SHA256 签名）",
    "sms": "短信网关（HTTP 模板）",
}
DELIVERY_STATES: dict[str, str] = {
    "pending": "待发送",
    "sending": "发送中",
    "held": "待汇总（每日摘要）",
    "delivered": "已送达",
    "dead": "发送失败（死信）",
    "digested": "已并入摘要",
}


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Channel(Base):
    """A way out: an SMTP server, a group robot, a webhook, an SMS gateway.

    `config` holds what may be shown (host, port, sender …); `secrets` holds what may not
    (passwords, robot URLs with their keys, signing secrets): never returned, never logged.
    `unit_id` narrows a group robot or webhook to the messages of one unit's people.
    """

    __tablename__ = "notify_channels"
    __table_args__ = (
        CheckConstraint("kind IN ('email', 'wecom', 'dingtalk', 'webhook', 'sms')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    config: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    secrets: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class Preference(Base):
    """One person's (leader's) addresses and wishes: which channel kinds (None: all), quiet
    hours (local time; messages wait until they end), a daily digest instead of one message
    per issue."""

    __tablename__ = "notify_preferences"

    leader_id: Mapped[int] = mapped_column(
        ForeignKey("leaders.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str | None] = mapped_column(String(200))
    mobile: Mapped[str | None] = mapped_column(String(20))  # default: the leader's phone
    channels: Mapped[list[str] | None] = mapped_column(JSONB)
    quiet_start: Mapped[time | None] = mapped_column(Time)
    quiet_end: Mapped[time | None] = mapped_column(Time)
    digest: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class UnitContact(Base):
    """Who hears about a unit's issues besides the responsible leader: the unit's contact
    (联络员) on 交办/改派, and the 联点领导/分管领导 at the last step of the escalation ladder."""

    __tablename__ = "notify_unit_contacts"

    unit_id: Mapped[int] = mapped_column(
        ForeignKey("units.id", ondelete="CASCADE"), primary_key=True
    )
    contact_leader_id: Mapped[int | None] = mapped_column(
        ForeignKey("leaders.id", ondelete="SET NULL")
    )
    supervisor_leader_id: Mapped[int | None] = mapped_column(
        ForeignKey("leaders.id", ondelete="SET NULL")
    )


class Message(Base):
    """What happened and for whom; rendered per channel when delivered."""

    __tablename__ = "notify_messages"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    # One message per cause and person: a repeated scan or a replayed event adds nothing.
    dedupe_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    issue_id: Mapped[int | None] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int | None] = mapped_column(ForeignKey("issue_events.id", ondelete="SET NULL"))
    leader_id: Mapped[int | None] = mapped_column(ForeignKey("leaders.id", ondelete="SET NULL"))
    subject: Mapped[str] = mapped_column(String(300), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[datetime] = _now()


class Delivery(Base):
    """One message on one channel (or one integration's callback) to one address."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'sending', 'held', 'delivered', 'dead', 'digested')",
            name="status",
        ),
        CheckConstraint(
            "(channel_id IS NULL) <> (callback_user_id IS NULL)", name="one_destination"
        ),
        # The worker's queue: what is due, oldest first.
        Index(
            "ix_notify_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
        Index("ix_notify_deliveries_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("notify_messages.id", ondelete="CASCADE"), nullable=False, index=True
    )
    channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("notify_channels.id", ondelete="CASCADE")
    )
    callback_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("integration_callbacks.user_id", ondelete="CASCADE")
    )
    address: Mapped[str] = mapped_column(String(300), nullable=False, server_default="")
    delivery_key: Mapped[str] = mapped_column(String(300), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="pending")
    attempts: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class IntegrationCallback(Base):
    """Where an integration account (12345 hotline …) wants its tickets' status changes
    (回单) pushed, and the secret that signs them."""

    __tablename__ = "integration_callbacks"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str] = mapped_column(String(500), nullable=False)
    secret: Mapped[str] = mapped_column(String(200), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class ExternalTicket(Base):
    """An issue that came from another system keeps that system's ticket id: the same ticket
    sent twice is one issue."""

    __tablename__ = "external_tickets"
    __table_args__ = (
        UniqueConstraint("user_id", "external_id", name="uq_external_tickets_ticket"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), nullable=False
    )
    external_id: Mapped[str] = mapped_column(String(100), nullable=False)
    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    address: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = _now()


class IntakeBatch(Base):
    """One uploaded feedback list (省/市测评反馈问题清单)."""

    __tablename__ = "intake_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(200), nullable=False)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _now()


class IntakeRow(Base):
    """One row of a list: what it said, where we think it is, and what became of it. Nothing
    is created until a planner confirms; the list's own row number is kept for the report
    back."""

    __tablename__ = "intake_rows"
    __table_args__ = (
        CheckConstraint(
            "status IN ('matched', 'ambiguous', 'unmatched', 'invalid', 'confirmed', 'skipped')",
            name="status",
        ),
        UniqueConstraint("batch_id", "row_number", name="uq_intake_rows_row"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("intake_batches.id", ondelete="CASCADE"), nullable=False, index=True
    )
    row_number: Mapped[int] = mapped_column(Integer, nullable=False)  # the list's 序号 or row
    address: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    category: Mapped[str] = mapped_column(String(32), nullable=False, server_default="")
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    photos: Mapped[list[str]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id", ondelete="SET NULL"))
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="SET NULL"))
