"""The audit log: every write, who, when, what, before/after, from where.

Call `record` in the same session (transaction) as the write, so the entry and the change
commit or roll back together:

    before = audit.snapshot(place)
    place.name = new_name
    audit.record(session, account, "place.update", "place", place.id, before, audit.snapshot(place))

`snapshot` turns a mapped row into JSON-safe values (geometries as GeoJSON, datetimes as
ISO 8601) and never includes secrets (password and token hashes). The client's IP comes from
`session.info["client_ip"]`, which the request's session carries (geoservice.db).
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from geoalchemy2.elements import WKBElement, WKTElement
from geoalchemy2.shape import to_shape
from shapely.geometry import mapping
from sqlalchemy import Select, func, inspect, select
from sqlalchemy.orm import Session

from geoservice.models import AuditEntry, User

# Columns never written to the log.
SECRET_COLUMNS = frozenset({"password_hash", "token_hash"})


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, WKBElement | WKTElement):
        return mapping(to_shape(value))
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_value(v) for v in value]
    return str(value)


def snapshot(obj: Any, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The column values of a mapped object (or a mapping) as JSON-safe data."""
    skip = SECRET_COLUMNS | set(exclude)
    if isinstance(obj, Mapping):
        return {k: _json_value(v) for k, v in obj.items() if k not in skip}
    state = inspect(obj)
    return {
        attr.key: _json_value(getattr(obj, attr.key))
        for attr in state.mapper.column_attrs
        if attr.key not in skip
    }


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict, dict]:
    """Only the keys whose values changed, as (before, after)."""
    keys = [k for k in {*before, *after} if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def record(
    session: Session,
    account: User | None,
    action: str,
    entity: str,
    entity_id: Any = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    actor: str | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Adds an audit entry to `session` (committed with the caller's write).

    `account`: who did it (None for the command line or the system: then say so in
    `actor`, e.g. "cli"). `action`: a dotted verb, e.g. "user.create", "issue.dispatch".
    """
    entry = AuditEntry(
        user_id=account.id if account is not None else None,
        actor=actor or (account.username if account is not None else "system"),
        action=action,
        entity_type=entity,
        entity_id=None if entity_id is None else str(entity_id),
        before=_json_value(dict(before)) if before is not None else None,
        after=_json_value(dict(after)) if after is not None else None,
        ip=ip or session.info.get("client_ip"),
    )
    session.add(entry)
    session.flush()
    return entry


def query(
    user: str | None = None,
    entity: str | None = None,
    entity_id: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Select:
    """The entries matching the filters, newest first (all values are bound parameters)."""
    stmt = select(AuditEntry)
    if user:
        stmt = stmt.where(AuditEntry.actor == user)
    if entity:
        stmt = stmt.where(AuditEntry.entity_type == entity)
    if entity_id:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if since:
        stmt = stmt.where(AuditEntry.at >= since)
    if until:
        stmt = stmt.where(AuditEntry.at < until)
    return stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())


def count(session: Session, stmt: Select) -> int:
    return session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))


def as_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "user": entry.actor,
        "user_id": entry.user_id,
        "action": entry.action,
        "entity": entry.entity_type,
        "entity_id": entry.entity_id,
        "before": entry.before,
        "after": entry.after,
        "ip": entry.ip,
    }
