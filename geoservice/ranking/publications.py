"""Published 通报: frozen figures and workbook, and the check that recomputing still agrees.

Publishing a period stores, once and for all, the workbook bytes exactly as downloaded, the
figures (totals and every ranking row's numbers) as JSON, the scoring settings in force, who
published it and when, and the hash of its inputs. A published 通报 is never replaced:
publishing the same period again (with a reason) adds a new version next to it.

Closed periods do not move by themselves (geoservice.ranking reads the holder and deadline at
the period end from the event history), so recomputing a published period gives the same
figures — unless a *correction* rewrote history (geoservice.issues.corrections) or an event was
entered with a date inside the period afterwards. `check` recomputes with the settings stored
in the publication and lists the figures that differ ("重算结果不同") and the corrections made
since publication to issues of that period.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, defer

from geoservice import httpcache
from geoservice.models import Leader, Publication, User
from geoservice.ranking import ranking, report
from geoservice.ranking.periods import Period
from geoservice.registry import LayerRegistry
from geoservice.service_errors import Conflict, InvalidInput, NotFound

# Bumped when a definition in docs/rankings.md changes: part of every publication's inputs.
RULES_VERSION = "2026-12-history-1"
ROW_FIELDS = (
    "key",
    "name",
    "rank",
    "ranked",
    "score",
    "bottom",
    "below_threshold",
    *ranking.COUNTS,
    *ranking.RATES,
    *ranking.HOURS,
)
TOTAL_FIELDS = tuple(f for f in ROW_FIELDS if f not in ("rank", "ranked", "bottom"))


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def settings_json(settings: ranking.Settings) -> dict[str, Any]:
    return {
        "weights": dict(settings.weights),
        "threshold": settings.threshold,
        "bottom_n": settings.bottom_n,
    }


def settings_from_json(value: dict[str, Any]) -> ranking.Settings:
    return ranking.Settings(
        weights=dict(value["weights"]),
        threshold=float(value["threshold"]),
        bottom_n=int(value["bottom_n"]),
    )


def figures_of(data: dict[str, Any]) -> dict[str, Any]:
    """The numbers of a 通报 (report.report_data) as plain JSON."""
    return {
        "totals": {f: data["totals"].get(f) for f in TOTAL_FIELDS},
        "rankings": {
            of: [{f: r.get(f) for f in ROW_FIELDS} for r in rows]
            for of, rows in data["rankings"].items()
        },
        "overdue_ids": [i["id"] for i in data["overdue"]],
        # 巡查到位率 (issue 16): key, 应巡, 已巡 per leader, unit, street.
        "patrol": {
            of: [[r["key"], r["patrol_due"], r["patrol_done"]] for r in rows]
            for of, rows in data.get("patrol", {}).items()
        },
    }


def events_digest(session: Session, period: Period) -> dict[str, int]:
    """Count and id sum of the period's events: an event entered later with a date inside the
    period changes it (index range scan on issue_events.at)."""
    row = session.execute(
        text(
            "SELECT count(*) AS n, coalesce(sum(id), 0) AS s FROM issue_events"
            " WHERE at >= :f AND at < :t"
        ),
        {"f": period.start, "t": period.end},
    ).one()
    return {"count": int(row.n), "id_sum": int(row.s)}


def inputs_of(
    session: Session, period: Period, settings: ranking.Settings, kinds: list[str]
) -> dict[str, Any]:
    return {
        "rules_version": RULES_VERSION,
        "period": period.as_dict(),
        "settings": settings_json(settings),
        "rankings": kinds,
        "events": events_digest(session, period),
    }


def _period_of(pub: Publication) -> Period:
    return Period(
        pub.period_kind,
        pub.period_from,
        pub.period_to,
        pub.period_label,
        pub.inputs["period"]["title"],
    )


def latest(session: Session, period: Period) -> Publication | None:
    return session.scalars(
        select(Publication)
        .where(Publication.period_kind == period.kind, Publication.period_label == period.label)
        .order_by(Publication.version.desc())
        .limit(1)
    ).first()


def publish(
    session: Session,
    registry: LayerRegistry,
    period: Period,
    settings: ranking.Settings,
    actor: User | None,
    note: str = "",
    now: datetime | None = None,
) -> Publication:
    """Freezes the 通报 of a closed period. The caller commits.

    409 if the period has not ended, or was published already and no `note` (the reason for a
    new version) is given."""
    now = now or datetime.now(UTC)
    note = (note or "").strip()
    if period.end > now:
        raise Conflict(f"{period.title} 尚未结束，不能发布通报", field="from")
    previous = latest(session, period)
    if previous is not None and not note:
        raise Conflict(
            f"{period.title} 的通报已于 {previous.published_at:%Y-%m-%d %H:%M} 发布（第 "
            f"{previous.version} 版）；如需重新发布，请填写理由（作为新版本保存，原版本保留）",
            {"publication_id": previous.id},
            "note",
        )
    if len(note) > 2000:
        raise InvalidInput("理由不能超过 2000 字", field="note")
    data = report.report_data(session, registry, period, settings)
    kinds = list(data["rankings"])
    figures = figures_of(data)
    tz = period.start.tzinfo
    wb = report.workbook(
        session, registry, period, settings, generated_at=now.astimezone(tz), data=data
    )
    buffer = io.BytesIO()
    wb.save(buffer)
    content = buffer.getvalue()
    inputs = inputs_of(session, period, settings, kinds)
    pub = Publication(
        period_kind=period.kind,
        period_label=period.label,
        period_from=period.start,
        period_to=period.end,
        version=(previous.version + 1) if previous else 1,
        title=f"{data['totals']['name']}创文工作通报（{period.title}）",
        published_at=now,
        published_by_id=actor.id if actor else None,
        note=note,
        settings=settings_json(settings),
        inputs=inputs,
        inputs_sha256=sha256(canonical(inputs)),
        figures=figures,
        figures_sha256=sha256(canonical(figures)),
        filename=report.filename(period),
        workbook=content,
        workbook_sha256=sha256(content),
    )
    session.add(pub)
    session.flush()
    return pub


def get(session: Session, publication_id: int) -> Publication:
    pub = session.get(Publication, publication_id)
    if pub is None:
        raise NotFound(f"没有编号为 {publication_id} 的通报", field="id")
    return pub


def workbook_info(session: Session, publication_id: int) -> Any:
    """(workbook_sha256, filename, published_at) of a publication, without loading its
    workbook or figures (a revalidation needs only the hash)."""
    row = session.execute(
        select(Publication.workbook_sha256, Publication.filename, Publication.published_at).where(
            Publication.id == publication_id
        )
    ).first()
    if row is None:
        raise NotFound(f"没有编号为 {publication_id} 的通报", field="id")
    return row


def workbook_bytes(session: Session, publication_id: int) -> bytes:
    return session.scalar(select(Publication.workbook).where(Publication.id == publication_id))


def summary(
    session: Session,
    pub: Publication,
    size_bytes: int | None = None,
    period_title: str | None = None,
) -> dict[str, Any]:
    """What a publication is, without its figures: `size_bytes` and `period_title` when read
    beside a row loaded without its workbook and inputs (`listing`)."""
    who = session.get(User, pub.published_by_id) if pub.published_by_id else None
    if period_title is None:
        period_title = pub.inputs["period"]["title"]
    return {
        "id": pub.id,
        "period": {
            "kind": pub.period_kind,
            "label": pub.period_label,
            "from": pub.period_from.isoformat(),
            "to": pub.period_to.isoformat(),
            "title": period_title,
        },
        "version": pub.version,
        "title": pub.title,
        "published_at": pub.published_at.isoformat(),
        "published_by": {"id": who.id, "name": who.display_name or who.username} if who else None,
        "note": pub.note,
        "filename": pub.filename,
        "size_bytes": len(pub.workbook) if size_bytes is None else size_bytes,
        "workbook_sha256": pub.workbook_sha256,
        "figures_sha256": pub.figures_sha256,
        "inputs_sha256": pub.inputs_sha256,
        "settings": pub.settings,
    }


def listing(session: Session, limit: int = 200, offset: int = 0) -> dict[str, Any]:
    """A page of publications, newest first, read without their workbooks, figures and inputs
    (a city's weekly 通报 is ~8 MB of workbook and ~2 MB of figures: a year of them is half a
    gigabyte)."""
    total = session.scalar(select(func.count()).select_from(Publication)) or 0
    rows = session.execute(
        select(
            Publication,
            func.octet_length(Publication.workbook),
            Publication.inputs["period"]["title"].astext,
        )
        .options(defer(Publication.workbook), defer(Publication.figures), defer(Publication.inputs))
        .order_by(Publication.period_to.desc(), Publication.version.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return {
        "total": total,
        "items": [summary(session, pub, size, title) for pub, size, title in rows],
    }


def _differences(published: dict[str, Any], now: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for field in TOTAL_FIELDS:
        a, b = published["totals"].get(field), now["totals"].get(field)
        if a != b and field not in ("key", "name"):
            out.append({"of": "all", "key": 0, "name": "全域", "field": field, "published": a,
                        "recomputed": b})  # fmt: skip
    for of, rows in published["rankings"].items():
        before = {r["key"]: r for r in rows}
        after = {r["key"]: r for r in now["rankings"].get(of, [])}
        for key in sorted(set(before) | set(after), key=lambda k: (k is None, str(k))):
            a, b = before.get(key), after.get(key)
            name = (a or b)["name"]
            for field in ROW_FIELDS:
                if field in ("key", "name"):
                    continue
                va = a.get(field) if a else None
                vb = b.get(field) if b else None
                if va != vb:
                    out.append({"of": of, "key": key, "name": name, "field": field,
                                "published": va, "recomputed": vb})  # fmt: skip
    return out


def corrections_since(session: Session, pub: Publication) -> list[dict[str, Any]]:
    """Attribution corrections made after publication to issues the period could count
    (reported before its end, not closed or rejected before its start)."""
    rows = (
        session.execute(
            text(
                """
SELECT e.id, e.issue_id, e.at, e.note, e.data, u.display_name, u.username
FROM issue_events e
JOIN issues i ON i.id = e.issue_id
LEFT JOIN users u ON u.id = e.actor_id
WHERE e.data ->> 'action' = 'attribution_correction' AND e.at > :published
  AND i.reported_at < :t
  AND NOT (i.status IN ('closed', 'rejected') AND coalesce(i.closed_at, i.updated_at) < :f)
ORDER BY e.at, e.id"""
            ),
            {"published": pub.published_at, "t": pub.period_to, "f": pub.period_from},
        )
        .mappings()
        .all()
    )
    names = dict(
        session.execute(
            select(Leader.id, Leader.name).where(
                Leader.id.in_(
                    {r["data"].get(k) for r in rows for k in ("from_leader_id", "to_leader_id")}
                    - {None}
                )
            )
        ).all()
    )
    return [
        {
            "event_id": r["id"],
            "issue_id": r["issue_id"],
            "at": r["at"].isoformat(),
            "by": r["display_name"] or r["username"],
            "reason": r["note"],
            "from_leader": names.get(r["data"].get("from_leader_id")),
            "to_leader": names.get(r["data"].get("to_leader_id")),
        }
        for r in rows
    ]


# The check of a publication changes only with writes dated before its period's end (its
# figures are a function of them: httpcache.written_before) — kept per process until one.
_CHECKS = httpcache.KeptByGeneration()


def check(session: Session, registry: LayerRegistry, pub: Publication) -> dict[str, Any]:
    """Recomputes the published period with the settings it was published with (4–5 s for a
    city's 通报 with its grid ranking; kept until a write it depends on)."""
    period = _period_of(pub)
    bind = session.get_bind()
    key = (repr(getattr(bind, "engine", bind).url), pub.id, tuple(s.name for s in registry))
    return _CHECKS.get(
        session,
        key,
        httpcache.written_before(period.end),
        lambda _generation: _checked(session, registry, pub, period),
    )


def _checked(
    session: Session, registry: LayerRegistry, pub: Publication, period: Period
) -> dict[str, Any]:
    settings = settings_from_json(pub.settings)
    data = report.report_data(session, registry, period, settings, pub.inputs["rankings"])
    now = figures_of(data)
    diffs = _differences(pub.figures, now)
    # Publications made before 巡查到位率 was part of the 通报 have no patrol figures.
    patrol_changed = "patrol" in pub.figures and now["patrol"] != pub.figures["patrol"]
    # The stored period and settings are the publication's own; what can change is the rule
    # set of this code and the period's events.
    inputs = {
        **pub.inputs,
        "rules_version": RULES_VERSION,
        "events": events_digest(session, period),
    }
    return {
        "same": not diffs
        and now["overdue_ids"] == pub.figures["overdue_ids"]
        and not patrol_changed,
        "differences": diffs,
        "patrol_changed": patrol_changed,
        "overdue_changed": now["overdue_ids"] != pub.figures["overdue_ids"],
        "inputs_changed": sha256(canonical(inputs)) != pub.inputs_sha256,
        "events_now": inputs["events"],
        "events_published": pub.inputs["events"],
        "corrections": corrections_since(session, pub),
    }
