"""巡查到位率, overdue patrol tasks and places nobody visited.

Rules:
- 到位率 = done / due over the tasks due in [from, to): due are the tasks whose period has
  ended, plus tasks already done early; a task is overdue when its period ended undone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.fieldwork.common import period_bounds
from geoservice.fieldwork.patrols import count_tasks, task_rows
from geoservice.fieldwork.places import street_sql
from geoservice.fieldwork.settings import FieldSettings
from geoservice.placegeom import place_geometries_sql
from geoservice.registry import LayerRegistry
from geoservice.service_errors import InvalidInput

GROUPINGS = {"leader": "责任人", "unit": "责任单位", "street": "街道"}


def rates(
    session: Session,
    registry: LayerRegistry,
    of: str,
    start: datetime,
    end: datetime,
    now: datetime,
    within: tuple[str, dict[str, Any]] | None = None,
    received_before: datetime | None = None,
) -> list[dict[str, Any]]:
    """巡查到位率 per leader, unit or street over the tasks due in [start, end); `within`: an
    SQL condition on `t.place_id` (the account's scope). `received_before`: count only the
    tasks generated and the visits received by then (a closed period's figures as of its end:
    a visit uploaded or a task generated later does not move them)."""
    if of not in GROUPINGS:
        raise InvalidInput(
            f"分组只能是 {', '.join(f'{k}（{v}）' for k, v in GROUPINGS.items())}",
            field="of",
        )
    key = {
        "leader": "l.id AS key, l.name AS name, u.name AS detail",
        "unit": "u.id AS key, coalesce(u.name, '（无单位）') AS name, NULL AS detail",
        "street": "st.id AS key, coalesce(st.name, '（辖区外）') AS name, NULL AS detail",
    }[of]
    group = {"leader": "l.id, l.name, u.name", "unit": "u.id, u.name", "street": "st.id, st.name"}[
        of
    ]
    extra, params = (f"AND {within[0]}", dict(within[1])) if within else ("", {})
    visit_join = "LEFT JOIN patrol_visits v ON v.task_id = t.id"
    if received_before is not None:
        # As of then: the visits received, and the tasks that existed (a task generated
        # later for a past period was never anyone's to do).
        visit_join += " AND v.received_at < :received_before"
        extra += " AND t.created_at < :received_before"
        params["received_before"] = received_before
    street_cte = street_join = ""
    if of == "street":
        # The street of each place once (a daily task repeats its place 7 times a week).
        street_cte = f"""WITH ps AS MATERIALIZED (
  SELECT g.id, {street_sql("g.geom")} AS street_id
  FROM ({place_geometries_sql(registry)}) g
  WHERE g.id IN (SELECT place_id FROM patrol_tasks
                 WHERE period_end > :start AND period_end <= :end))
"""
        street_join = (
            "JOIN ps ON ps.id = t.place_id LEFT JOIN admin_areas st ON st.id = ps.street_id"
        )
    rows = session.execute(
        text(f"""{street_cte}
SELECT {key},
       count(*) FILTER (WHERE v.id IS NOT NULL) AS done,
       count(*) FILTER (WHERE v.id IS NOT NULL OR t.period_end <= :now) AS due,
       count(*) FILTER (WHERE v.id IS NULL AND t.period_end <= :now) AS missed,
       count(*) FILTER (WHERE v.far) AS far,
       count(*) AS tasks
FROM patrol_tasks t
JOIN leaders l ON l.id = t.leader_id
LEFT JOIN units u ON u.id = l.unit_id
{visit_join}
{street_join}
WHERE t.period_end > :start AND t.period_end <= :end {extra}
GROUP BY {group}"""),
        {"start": start, "end": end, "now": now, **params},
    ).mappings()
    out = []
    for r in rows:
        due = r["due"]
        out.append(
            {
                "key": r["key"],
                "name": r["name"],
                "detail": r["detail"],
                "done": r["done"],
                "due": due,
                "missed": r["missed"],
                "far": r["far"],
                "tasks": r["tasks"],
                "rate": round(r["done"] / due, 4) if due else None,
            }
        )
    out.sort(key=lambda r: (r["rate"] is None, -(r["rate"] or 0), r["name"]))
    return out


def overdue_tasks(
    session: Session,
    registry: LayerRegistry,
    now: datetime,
    leader_ids: Sequence[int] | None = None,
    limit: int = 500,
    within: tuple[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Tasks whose period ended without a visit (oldest first within the limit; how many
    there are in all: `count_overdue`)."""
    where, params = _overdue_where(now, leader_ids, within)
    return task_rows(session, registry, now, where, params, limit)


def count_overdue(
    session: Session,
    now: datetime,
    leader_ids: Sequence[int] | None = None,
    within: tuple[str, dict[str, Any]] | None = None,
) -> int:
    return count_tasks(session, *_overdue_where(now, leader_ids, within))


def _overdue_where(
    now: datetime,
    leader_ids: Sequence[int] | None,
    within: tuple[str, dict[str, Any]] | None,
) -> tuple[str, dict[str, Any]]:
    where = "v.id IS NULL AND t.period_end <= :now"
    params: dict[str, Any] = {"now": now}
    if within:
        where += f" AND {within[0]}"
        params.update(within[1])
    if leader_ids is not None:
        where += " AND t.leader_id = ANY(:leaders)"
        params["leaders"] = list(leader_ids)
    return where, params


# The map of places not yet visited draws the open tasks of the day's periods up to this many
# (a city patrolling every grid daily has ~30,000): it says when there are more.
UNVISITED_TASKS = 10_000


def unvisited(
    session: Session,
    registry: LayerRegistry,
    settings: FieldSettings,
    day: date,
    now: datetime,
    within: tuple[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A FeatureCollection of the places with an open task in a period holding `day` (the map
    of places not visited this period), one feature per place with its open tasks."""
    start, end = period_bounds("day", day, settings.tz)
    where = "v.id IS NULL AND t.period_start < :end AND t.period_end > :start"
    params: dict[str, Any] = {"start": start, "end": end}
    if within:
        where += f" AND {within[0]}"
        params.update(within[1])
    rows = task_rows(session, registry, now, where, params, limit=UNVISITED_TASKS)
    tasks = len(rows)
    if tasks == UNVISITED_TASKS:
        tasks = count_tasks(session, where, params)
    places: dict[int, dict[str, Any]] = {}
    for r in rows:
        pid = r["place"]["id"]
        feature = places.setdefault(
            pid,
            {
                "type": "Feature",
                "id": pid,
                "geometry": r["geometry"],
                "properties": {**r["place"], "leaders": [], "open_tasks": 0, "overdue": False},
            },
        )
        props = feature["properties"]
        props["open_tasks"] += 1
        props["overdue"] = props["overdue"] or r["overdue"]
        if r["leader"] not in props["leaders"]:
            props["leaders"].append(r["leader"])
    return {
        "type": "FeatureCollection",
        "features": list(places.values()),
        "openTasks": tasks,  # the tasks behind the features, or more: then `truncated`
        "truncated": tasks > len(rows),
    }
