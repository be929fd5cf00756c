"""巡查到位率 beside the other indicators: 应巡 / 已巡 / 到位率 per leader, unit and street
for a ranking period (geoservice.fieldwork.patrol_coverage computes them).

Reproducible like the rest of a 通报: a period is read as of its end (or now, while it
runs) — the tasks whose patrol period ended inside it and that existed by then, each
belonging to the leader who held the place when that patrol period began (tasks are generated
so), and the visits the server had received by then. A visit uploaded after the period ended,
a task generated later for a past day, or any later reassignment leaves a closed period's
figures unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.fieldwork import patrol_coverage
from geoservice.ranking import ranking
from geoservice.ranking.periods import Period
from geoservice.registry import LayerRegistry

# The ranking groupings that have a 巡查到位率 (the fieldwork grouping of the same name).
GROUPINGS: tuple[str, ...] = ("leader", "unit", "street")
FIELDS: dict[str, str] = {
    "patrol_due": "应巡",
    "patrol_done": "已巡",
    "patrol_missed": "逾期未巡",
    "patrol_rate": "巡查到位率",
}


def as_of(period: Period, now: datetime | None = None) -> datetime:
    """The instant a period is read at: its end once over, else now."""
    now = now or datetime.now(UTC)
    return min(period.end, now)


def figures(
    session: Session,
    registry: LayerRegistry,
    of: str,
    period: Period,
    now: datetime | None = None,
) -> dict[Any, dict[str, Any]]:
    """key → {patrol_due, patrol_done, patrol_missed, patrol_rate, name, detail} for grouping
    `of` (leader, unit, street; empty for the others)."""
    if of not in GROUPINGS:
        return {}
    at = as_of(period, now)
    rows = patrol_coverage.rates(
        session, registry, of, period.start, period.end, at, received_before=at
    )
    return {
        r["key"]: {
            "patrol_due": r["due"],
            "patrol_done": r["done"],
            "patrol_missed": r["missed"],
            "patrol_rate": r["rate"],
            "name": r["name"],
        }
        for r in rows
        if r["due"]
    }


def totals(
    session: Session, registry: LayerRegistry, period: Period, now: datetime | None = None
) -> dict[str, Any]:
    """The city-wide 应巡 / 已巡 / 到位率 (every task belongs to exactly one leader)."""
    per_leader = figures(session, registry, "leader", period, now)
    due = sum(f["patrol_due"] for f in per_leader.values())
    done = sum(f["patrol_done"] for f in per_leader.values())
    return {
        "patrol_due": due,
        "patrol_done": done,
        "patrol_missed": sum(f["patrol_missed"] for f in per_leader.values()),
        "patrol_rate": round(done / due, 4) if due else None,
    }


def _empty_row(key: Any, name: str, detail: dict[str, Any], settings: ranking.Settings) -> dict:
    """A ranking row for someone with patrol tasks and no issue activity: zero counts, no
    score, not ranked (like the rows with only 回访)."""
    row: dict[str, Any] = {"key": key, "name": name, "detail": detail}
    row.update(dict.fromkeys(ranking.COUNTS, 0))
    row.update({"avg_hours_to_close": None, "median_hours_to_close": None})
    row = ranking._finish_row(row, settings)
    row.update(ranked=False, rank=None, bottom=False, below_threshold=False, flagged=False)
    return row


def merge(
    session: Session,
    registry: LayerRegistry,
    of: str,
    period: Period,
    rows: list[dict[str, Any]],
    settings: ranking.Settings = ranking.DEFAULT_SETTINGS,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Adds the patrol fields to the ranking rows of `of` (None where the row had no patrol
    task due), appending unranked rows for those with patrol tasks only. Returns `rows`."""
    if of == "all":
        for row in rows:
            row.update(totals(session, registry, period, now))
        return rows
    found = figures(session, registry, of, period, now)
    # Tasks of leaders without a unit, or of places outside every street, have no row here
    # (the ranking's unassigned row counts issues, not people); the 通报 sheet lists them.
    found.pop(None, None)
    empty = dict.fromkeys(FIELDS)
    for row in rows:
        f = found.pop(row["key"], empty) if row["key"] is not None else empty
        row.update({k: f[k] for k in FIELDS})
    if found:
        g = ranking.grouping(registry, of)
        labels = ranking._labels(session, g, sorted(found), registry)
        extra = []
        for key, f in found.items():
            name, detail = labels.get(key, (f["name"], {}))
            row = _empty_row(key, name, detail, settings)
            row.update({k: f[k] for k in FIELDS})
            extra.append(row)
        extra.sort(key=lambda r: str(r["name"]))
        rows.extend(extra)
    return rows


def report_rows(
    session: Session, registry: LayerRegistry, period: Period, now: datetime | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The 通报's 巡查到位率 sheet: per grouping, rows (name, due, done, missed, rate) by rate,
    lowest first (the ones to urge), then name."""
    available = ranking.groupings(registry)
    found = {of: figures(session, registry, of, period, now) for of in ("leader", "street")
             if of in available}  # fmt: skip
    if "unit" in available:  # the units' sums of their leaders' (one pass over the tasks less)
        found["unit"] = _units_of(session, found.get("leader") or {})
    out: dict[str, list[dict[str, Any]]] = {}
    for of in GROUPINGS:
        if of not in found:
            continue
        rows = [
            {"key": key, "name": f["name"], **{k: f[k] for k in FIELDS}}
            for key, f in found[of].items()
        ]
        rows.sort(key=lambda r: (r["patrol_rate"], -r["patrol_due"], str(r["name"])))
        out[of] = rows
    return out


def _units_of(session: Session, leaders: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """Per-unit figures summed from per-leader ones (a task's unit is its leader's unit)."""
    if not leaders:
        return {}
    units = session.execute(
        text(
            "SELECT l.id, l.unit_id, coalesce(u.name, '（无单位）') AS name FROM leaders l"
            " LEFT JOIN units u ON u.id = l.unit_id WHERE l.id = ANY(:ids)"
        ),
        {"ids": list(leaders)},
    ).all()
    out: dict[Any, dict[str, Any]] = {}
    for leader_id, unit_id, name in units:
        f = leaders[leader_id]
        row = out.setdefault(
            unit_id, {"name": name, "patrol_due": 0, "patrol_done": 0, "patrol_missed": 0}
        )
        for k in ("patrol_due", "patrol_done", "patrol_missed"):
            row[k] += f[k]
    for row in out.values():
        row["patrol_rate"] = round(row["patrol_done"] / row["patrol_due"], 4)
    return out
