"""Supervision indicators (督查考核): per leader, unit, grid, community, street or layer type.

Every number is defined in docs/rankings.md and computed here in one SQL pipeline:

1. `cand`   — the issues that can matter for a period [f, t) (reported before t, not closed
              before f, not a duplicate), with their grouping key;
2. `moves`  — their state changes *inside* the period (the rollup of `issue_events`:
              geoservice.ranking.rollup);
3. `facts`  — the status at the period end, rebuilt from the last state change before t;
4. `flags`  — one boolean per indicator and issue. Aggregates count them; drill-downs list them.

Rates, the composite score, the rank and the flags are computed in Python from the counts,
with exact fractions (no float drift at the 85-point threshold). Plain functions taking a
session and plain values; no Flask.
"""

from __future__ import annotations

import gc
import json
import re
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import lru_cache, wraps
from math import lcm
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.areas import service_area
from geoservice.citizens import followup
from geoservice.models import UNCLOSED
from geoservice.ranking import rollup, snapshot
from geoservice.ranking.periods import Period
from geoservice.registry import BASE_LAYER, LayerRegistry
from geoservice.vocab import OPEN_STATUSES

DEFAULT_WEIGHTS: dict[str, float] = {
    "on_time_rate": 60,
    "close_rate": 30,
    "rework_free": 10,
    # 群众满意率 (回访, geoservice.citizens.followup): shown always, scored only when weighted.
    "satisfaction": 0,
}
DEFAULT_THRESHOLD = 85
DEFAULT_BOTTOM_N = 3

# Counted indicators (each one drillable to its list of issues), in display order.
COUNTS: dict[str, str] = {
    "received": "受理数",
    "should_close": "应结案数",
    "closed": "结案数",
    "closed_on_time": "按期结案数",
    "closed_late": "超期结案数",
    "open_end": "期末未结数",
    "overdue_end": "期末超期数",
    "handled": "处置数",
    "reworked": "返工数",
    "relapses": "反弹数",
    "rejected": "不予立案数",
    "handed_overdue": "超期转出数",
    "extension_requested": "申请延期数",
    "extension_granted": "批准延期数",
    "extension_refused": "驳回延期数",
}
RATES: dict[str, str] = {
    "close_rate": "结案率",
    "on_time_rate": "按期结案率",
    "rework_rate": "返工率",
}
HOURS: dict[str, str] = {
    "avg_hours_to_close": "平均结案时长（小时）",
    "median_hours_to_close": "结案时长中位数（小时）",
}
# Which counts form each rate: (numerator, denominator).
RATE_PARTS: dict[str, tuple[str, str]] = {
    "close_rate": ("closed", "should_close"),
    "on_time_rate": ("closed_on_time", "should_close"),
    "rework_rate": ("reworked", "handled"),
}


class RankingError(ValueError):
    """Bad input to a ranking function; `field` names the parameter."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Grouping:
    """How issues are grouped: a key expression over `issues i` (plus joins) and its labels."""

    name: str
    title: str
    key_sql: str
    joins: str = ""
    # SELECT k, name, detail (jsonb) FROM …: every row's label, joined to the figures by key.
    label_sql: str | None = None
    key_type: type = int
    ranked: bool = True
    none_label: str = "（未落实责任）"
    # Key of an event's row (`e` an issue event joined to `i` and `joins`): for leader and
    # unit the holder recorded on the event, and, for a handover, the holder before it.
    event_key_sql: str | None = None
    event_prev_key_sql: str | None = None
    # Labels kept per process (`_cached_labels`): the keys to keep (SELECT id FROM …) and the
    # tables the labels read, all tracked by data_generations (geoservice/httpcache.py).
    label_keys_sql: str | None = None
    label_tables: tuple[str, ...] = ()

    @property
    def labels_sql(self) -> str | None:
        """The labels of the keys in :keys (an array literal of integers)."""
        if self.label_sql is None:
            return None
        return f"SELECT * FROM ({self.label_sql}) lab WHERE lab.k = ANY(CAST(:keys AS bigint[]))"


@dataclass(frozen=True)
class Settings:
    """Scoring settings (app.config RANKING_WEIGHTS, RANKING_THRESHOLD, RANKING_BOTTOM_N)."""

    weights: Mapping[str, float]
    threshold: float = DEFAULT_THRESHOLD
    bottom_n: int = DEFAULT_BOTTOM_N

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        weights = dict(DEFAULT_WEIGHTS)
        weights.update(config.get("RANKING_WEIGHTS") or {})
        unknown = set(weights) - set(DEFAULT_WEIGHTS)
        if unknown or any(float(w) < 0 for w in weights.values()) or not sum(weights.values()):
            raise ValueError(
                f"RANKING_WEIGHTS: keys {sorted(DEFAULT_WEIGHTS)}, non-negative, not all zero"
            )
        return cls(
            weights=weights,
            threshold=float(config.get("RANKING_THRESHOLD", DEFAULT_THRESHOLD)),
            bottom_n=int(config.get("RANKING_BOTTOM_N", DEFAULT_BOTTOM_N)),
        )


DEFAULT_SETTINGS = Settings(weights=DEFAULT_WEIGHTS)


def _as_of(column: str) -> str:
    """The issue's `column` (leader_id, unit_id, deadline) at the period end `p.t`: its current
    value unless it changed since (issues.holder_since), then the value before the first
    change at or after `p.t` (index ix_issue_events_holder). A subquery inside the CASE, so
    it is only run for those issues: no per-row cost for the others."""
    return (
        f"(CASE WHEN i.holder_since >= p.t THEN (SELECT e.prev_{column} FROM issue_events e"
        " WHERE e.issue_id = i.id AND e.holder_change AND e.at >= p.t"
        f" ORDER BY e.at, e.id LIMIT 1) ELSE i.{column} END)"
    )


def groupings(registry: LayerRegistry) -> dict[str, Grouping]:
    """The groupings this deployment offers (community/street need the base layer's areas)."""
    out = {
        "leader": Grouping(
            "leader",
            "包保领导",
            _as_of("leader_id"),
            event_key_sql="e.leader_id",
            event_prev_key_sql="e.prev_leader_id",
            label_sql="SELECT l.id AS k, l.name, jsonb_build_object('title', l.title,"
            " 'unit', u.name, 'level', l.level) AS detail FROM leaders l"
            " LEFT JOIN units u ON u.id = l.unit_id",
            none_label="（未落实包保领导）",
        ),
        "unit": Grouping(
            "unit",
            "责任单位",
            _as_of("unit_id"),
            event_key_sql="e.unit_id",
            event_prev_key_sql="e.prev_unit_id",
            label_sql="SELECT id AS k, name, jsonb_build_object('is_lead', is_lead) AS detail"
            " FROM units",
            none_label="（未落实责任单位）",
        ),
    }
    base = registry.get(BASE_LAYER) if BASE_LAYER in registry else None
    if base is not None:
        has_area = "community_id" in base.model.__table__.c
        area = "LEFT JOIN admin_areas a ON a.id = g.community_id" if has_area else ""
        out["grid"] = Grouping(
            "grid",
            base.title,
            "i.grid_id",
            label_sql="SELECT p.id AS k, p.name, jsonb_build_object('code', p.code"
            + (", 'community', a.name" if has_area else "")
            + f") AS detail FROM places p LEFT JOIN {base.table} g ON g.id = p.id {area}",
            none_label=f"（不在任何{base.title}内）",
            label_keys_sql=f"SELECT id FROM {base.table}",
            label_tables=("places", base.table, *(("admin_areas",) if has_area else ())),
        )
        if has_area:
            out["community"] = Grouping(
                "community",
                "社区",
                "g.community_id",
                joins=f"LEFT JOIN {base.table} g ON g.id = i.grid_id",
                label_sql="SELECT a.id AS k, a.name, jsonb_build_object('code', a.code,"
                " 'street', s.name) AS detail FROM admin_areas a"
                " LEFT JOIN admin_areas s ON s.id = a.parent_id",
                none_label="（未归属社区）",
            )
            out["street"] = Grouping(
                "street",
                "街道",
                "ca.parent_id",
                joins=f"LEFT JOIN {base.table} g ON g.id = i.grid_id"
                " LEFT JOIN admin_areas ca ON ca.id = g.community_id",
                label_sql="SELECT a.id AS k, a.name, jsonb_build_object('code', a.code)"
                " AS detail FROM admin_areas a",
                none_label="（未归属街道）",
            )
    out["layer"] = Grouping(
        "layer",
        "图层类型",
        "pp.layer",
        joins="LEFT JOIN places pp ON pp.id = i.primary_place_id",
        key_type=str,
        none_label="（不属于任何图层要素）",
    )
    out["category"] = Grouping("category", "问题类别", "i.category", key_type=str, ranked=False)
    out["source"] = Grouping("source", "问题来源", "i.source", key_type=str, ranked=False)
    out["all"] = Grouping("all", "全域", "0", ranked=False)
    return out


def grouping(registry: LayerRegistry, of: str) -> Grouping:
    available = groupings(registry)
    if of not in available:
        raise RankingError(f"未知的排名对象 {of!r}，可选：{', '.join(available)}", "of")
    return available[of]


# --- the SQL pipeline ------------------------------------------------------------------------

_CHANGE = "e.from_status IS DISTINCT FROM e.to_status"

_CAND_SQL = """
  SELECT p.n, p.f, p.t, p.w_from, i.id, i.reported_at, {deadline} AS deadline, i.relapse_of_id,
    {key} AS k
  FROM periods p
  JOIN issues i ON i.reported_at < {t} AND {closed_filter}
  {joins}
  WHERE i.duplicate_of_id IS NULL {where}"""

# The state (closed / rejected / open / other) after the last change of issue c before `bound`.
_STATE_PROBE = """(SELECT CASE WHEN e.to_status = 'closed' THEN 'closed'
                     WHEN e.to_status = 'rejected' THEN 'rejected'
                     WHEN e.to_status = ANY(CAST(:open AS text[])) THEN 'open'
                     ELSE 'other' END
         FROM issue_events e
         WHERE e.issue_id = c.id AND e.at < {bound} AND {change}
         ORDER BY e.at DESC, e.id DESC LIMIT 1)"""

# The same for a period of whole ISO weeks (bound: the Monday c.w_from), from the rollup: the
# last week row before it holds the issue's last change before the period (by at, id).
_STATE_PROBE_WEEKS = """(SELECT CASE WHEN r.last_status = 'closed' THEN 'closed'
                     WHEN r.last_status = 'rejected' THEN 'rejected'
                     WHEN r.last_status = ANY(CAST(:open AS text[])) THEN 'open'
                     ELSE 'other' END
         FROM issue_event_rollup r
         WHERE r.issue_id = c.id AND r.grain = 'w' AND r.start < c.w_from
         ORDER BY r.start DESC LIMIT 1)"""

# The kinds of a change's new status, for the tie check in `facts` (last_* of `moves`).
_KINDS = """
    max({at}) FILTER (WHERE {status} = 'closed') AS last_closed,
    max({at}) FILTER (WHERE {status} = 'rejected') AS last_reject,
    max({at}) FILTER (WHERE {status} = ANY(CAST(:open AS text[]))) AS last_open,
    max({at}) FILTER (WHERE {status} NOT IN ('closed', 'rejected')
                        AND NOT {status} = ANY(CAST(:open AS text[]))) AS last_other"""
_REWORK = "(e.from_status = 'fixed' AND e.to_status = 'in_progress')"
_HANDLED = "(e.to_status IN ('fixed', 'closed') OR e.from_status = 'fixed')"

# The period's events summarised per issue, read straight from issue_events: by issue for few
# candidates (index on issue_id, at), or one range scan of the period (index on at: the
# reference the rollup is checked against, and the benchmark's baseline).
_MOVES_EVENTS = (
    """moves AS (
  SELECT {n}, e.issue_id,
    max(e.at) AS last_at,
    max(e.at) FILTER (WHERE e.to_status = 'closed') AS last_close,"""
    + _KINDS.format(at="e.at", status="e.to_status")
    + f""",
    bool_or({_REWORK}) AS reworked,
    bool_or({_HANDLED}) AS handled,
    bool_or(e.to_status = 'rejected') AS rejected
  FROM {{source}}
  WHERE {{change}}
  GROUP BY 1, e.issue_id
),"""
)
_BY_ISSUE = "cand c JOIN issue_events e ON e.issue_id = c.id AND e.at >= c.f AND e.at < c.t"
_SCAN = "periods p JOIN issue_events e ON e.at >= p.f AND e.at < p.t"

# All issues: the rollup (geoservice.ranking.rollup) — one row per issue and whole week or
# day of the period — and the events of the partial days at its ends.
_ROLLUP_PIECE = """
  SELECT p.n, r.issue_id, r.last_at AS at, r.last_status AS to_status, r.last_close,
    r.reworked, r.handled, r.rejected
  FROM periods p
  JOIN issue_event_rollup r ON r.grain = '{grain}' AND r.start >= p.{lo} AND r.start < p.{hi}"""
_EVENT_PIECE = f"""
  SELECT p.n, e.issue_id, e.at, e.to_status,
    CASE WHEN e.to_status = 'closed' THEN e.at END, {_REWORK}, {_HANDLED},
    e.to_status = 'rejected'
  FROM periods p
  JOIN issue_events e ON e.at >= p.{{lo}} AND e.at < p.{{hi}}
  WHERE {{{{change}}}}"""
# Every period one whole ISO week: one rollup row per issue, nothing to merge; its last
# status is the state at the week's end (the last change by (at, id): no tie to settle).
_MOVES_WEEK = """moves AS (
  SELECT p.n, r.issue_id, r.last_close, r.last_status, r.reworked, r.handled, r.rejected
  FROM periods p
  JOIN issue_event_rollup r ON r.grain = 'w' AND r.start >= p.w_from AND r.start < p.w_to
),"""
_MOVES_ROLLUP = (
    "pieces AS ("
    + "\n  UNION ALL".join(
        [
            _ROLLUP_PIECE.format(grain="w", lo="w_from", hi="w_to"),
            _ROLLUP_PIECE.format(grain="d", lo="d1_from", hi="d1_to"),
            _ROLLUP_PIECE.format(grain="d", lo="d2_from", hi="d2_to"),
            _EVENT_PIECE.format(lo="r1_from", hi="r1_to"),
            _EVENT_PIECE.format(lo="r2_from", hi="r2_to"),
        ]
    )
    + """
),
moves AS (
  SELECT x.n, x.issue_id,
    max(x.at) AS last_at,
    max(x.last_close) AS last_close,"""
    + _KINDS.format(at="x.at", status="x.to_status")
    + """,
    bool_or(x.reworked) AS reworked,
    bool_or(x.handled) AS handled,
    bool_or(x.rejected) AS rejected
  FROM pieces x
  GROUP BY x.n, x.issue_id
),"""
)

# The state at the period end of an issue that changed inside it: the kind of its last
# change (unless kinds tie on its instant: then the changes ordered by (at, id)).
_MOVED_STATE = """      WHEN ((m.last_closed = m.last_at) IS TRUE)::int
           + ((m.last_reject = m.last_at) IS TRUE)::int
           + ((m.last_open = m.last_at) IS TRUE)::int
           + ((m.last_other = m.last_at) IS TRUE)::int = 1
      THEN CASE WHEN m.last_closed = m.last_at THEN 'closed'
                WHEN m.last_reject = m.last_at THEN 'rejected'
                WHEN m.last_open = m.last_at THEN 'open'
                ELSE 'other' END
      ELSE {probe_to}"""
# The same for one whole ISO week (_MOVES_WEEK): the kind of the week row's last status.
_MOVED_STATE_WEEK = """      ELSE CASE WHEN m.last_status = 'closed' THEN 'closed'
                WHEN m.last_status = 'rejected' THEN 'rejected'
                WHEN m.last_status = ANY(CAST(:open AS text[])) THEN 'open'
                ELSE 'other' END"""

_FLAGS_SQL = """
WITH periods AS (
  SELECT p.n::int AS n, p.f, p.t, p.w_from, p.w_to, p.d1_from, p.d1_to, p.d2_from, p.d2_to,
    p.r1_from, p.r1_to, p.r2_from, p.r2_to
  FROM unnest(CAST(:froms AS timestamptz[]), CAST(:tos AS timestamptz[]),
              CAST(:w_from AS date[]), CAST(:w_to AS date[]),
              CAST(:d1_from AS date[]), CAST(:d1_to AS date[]),
              CAST(:d2_from AS date[]), CAST(:d2_to AS date[]),
              CAST(:r1_from AS timestamptz[]), CAST(:r1_to AS timestamptz[]),
              CAST(:r2_from AS timestamptz[]), CAST(:r2_to AS timestamptz[]))
       WITH ORDINALITY AS p(f, t, w_from, w_to, d1_from, d1_to, d2_from, d2_to,
                            r1_from, r1_to, r2_from, r2_to, n)
),
-- Issues reported before the period end, minus those closed (or rejected) before it began.
cand AS {cand_materialized}({cand_open}
  UNION ALL{cand_closed}
  UNION ALL{cand_rejected}
),
-- Each issue's state changes inside the period, summarised.
{moves}
-- The state at the period end once per issue (a LATERAL kept apart by OFFSET 0: inlined,
-- every flag below would run its own copy of the probes).
facts AS {facts_materialized}(
  SELECT c.*, m.last_close,
    coalesce(m.reworked, false) AS reworked,
    coalesce(m.handled, false) AS handled,
    coalesce(m.rejected, false) AS rejected,
    es.end_state
  FROM cand c
  LEFT JOIN moves m ON {moves_on}
  CROSS JOIN LATERAL (SELECT CASE
      -- no change inside the period: the state after the last change before it
      WHEN m.issue_id IS NULL THEN coalesce({probe_from}, 'open')
{moved_state}
    END AS end_state OFFSET 0) es
),
-- Changes of holder past the deadline, and extension events, inside the period (few: a
-- partial index on `at`, models.RULE_EVENT; a plain 交办 sets the first deadline, so it is
-- never past one).
evs AS (
  SELECT p.n, p.t, e.issue_id AS id, i.reported_at, e.at, e.data ->> 'action' AS action,
    e.holder_change, e.from_status, e.prev_deadline, e.deadline,
    {event_key} AS k, {event_prev_key} AS pk
  FROM periods p
  JOIN issue_events e ON e.at >= p.f AND e.at < p.t
    AND ((e.holder_change AND e.prev_deadline < e.at) OR (e.data ->> 'action') LIKE 'extension%')
  JOIN issues i ON i.id = e.issue_id
  {joins}
  WHERE i.duplicate_of_id IS NULL
),
flags AS (
  SELECT f.n, f.t, f.id, f.k, f.reported_at, f.deadline, f.last_close,
    f.reported_at >= f.f AS received,
    (f.end_state = 'closed' AND f.last_close IS NOT NULL) AS closed,
    f.end_state = 'open' AS open_end,
    (f.end_state = 'open' AND f.deadline < f.t) AS overdue_end,
    f.handled, f.reworked, f.rejected,
    (f.reported_at >= f.f AND f.relapse_of_id IS NOT NULL) AS relapses,
    CASE WHEN f.end_state = 'closed' AND f.last_close IS NOT NULL
         THEN extract(epoch FROM f.last_close - f.reported_at) / 3600.0 END AS hours
  FROM facts f
),
ind AS (
  SELECT x.n, x.t, x.id, x.k, x.reported_at, x.deadline, x.last_close,
    x.received, x.closed, x.open_end, x.overdue_end, x.handled, x.reworked, x.rejected,
    x.relapses, x.hours,
    (x.closed AND (x.deadline IS NULL OR x.last_close <= x.deadline)) AS closed_on_time,
    (x.closed AND x.deadline IS NOT NULL AND x.last_close > x.deadline) AS closed_late,
    (x.closed OR x.overdue_end) AS should_close,
    false AS handed_overdue, false AS extension_requested, false AS extension_granted,
    false AS extension_refused, NULL::timestamptz AS event_at, NULL AS hk
  FROM flags x
  WHERE {key_filter_k}
  UNION ALL
  -- 超期转出: the holder before a handover made while the issue was open and overdue keeps
  -- it as due (应结案) in the period; a granted 退回 (确权) is not held against them.
  SELECT v.n, v.t, v.id, v.pk, v.reported_at, v.prev_deadline, NULL,
    false, false, false, false, false, false, false, false, NULL,
    false, false, true, true, false, false, false, v.at, v.k
  FROM evs v
  WHERE v.holder_change AND {handed_distinct} AND v.prev_deadline < v.at
    AND v.from_status = ANY(CAST(:open AS text[])) AND v.action IS DISTINCT FROM 'return_grant'
    AND {key_filter_pk}
  UNION ALL
  -- 延期: requests and decisions, on the holder when they were made.
  SELECT v.n, v.t, v.id, v.k, v.reported_at, v.deadline, NULL,
    false, false, false, false, false, false, false, false, NULL,
    false, false, false, false,
    v.action = 'extension_request', v.action = 'extension_grant', v.action = 'extension_refuse',
    v.at, NULL
  FROM evs v
  WHERE v.action IN ('extension_request', 'extension_grant', 'extension_refuse')
    AND {key_filter_k}
)
"""

# Several groupings at once (`compute_many`): `k` is the array of their keys, and a
# handover counts for grouping number gi when its holders differ in that grouping.
_PER_KEY_SQL = """,
per_key AS (
  SELECT u.gi, x.n, u.key AS k, x.id, x.deadline, x.reported_at,
    x.received, x.closed, x.closed_on_time, x.closed_late,
    x.open_end, x.overdue_end, x.should_close, x.handled, x.reworked, x.relapses, x.rejected,
    x.handed_overdue, x.extension_requested, x.extension_granted, x.extension_refused, x.hours
  FROM ind x
  CROSS JOIN LATERAL unnest(x.k) WITH ORDINALITY AS u(key, gi)
  WHERE NOT (x.handed_overdue AND x.hk[u.gi] IS NOT DISTINCT FROM u.key)
)
"""
_AGGREGATE_MANY_SQL = """
SELECT gi, n, k,
  {counts},
  {hours}{overdue}
FROM per_key
GROUP BY gi, n, k
HAVING bool_or(received OR closed OR open_end OR handled OR rejected OR handed_overdue
               OR extension_requested OR extension_granted OR extension_refused)
"""

# One period: grouped by the key alone (n is 1 on every row; a sort on one bigint key: ~85 ms
# less backend CPU for the demo county's leader ranking).
_AGGREGATE_SQL = """
SELECT {n}, k,
  {counts},
  {hours}
FROM ind
GROUP BY {group}
HAVING bool_or(received OR closed OR open_end OR handled OR rejected OR handed_overdue
               OR extension_requested OR extension_granted OR extension_refused)
"""

# The issues open and past their deadline at the period end, of grouping number :overdue_gi
# (the 通报's overdue list, from the figures' own run): their ids, deadlines as of the period
# end and report times, in one order.
_OVERDUE_ARRAYS_SQL = """,
  array_agg(id ORDER BY id) FILTER (WHERE overdue_end AND gi = :overdue_gi) AS overdue_ids,
  array_agg(deadline ORDER BY id) FILTER (WHERE overdue_end AND gi = :overdue_gi)
    AS overdue_deadlines,
  array_agg(reported_at ORDER BY id) FILTER (WHERE overdue_end AND gi = :overdue_gi)
    AS overdue_reported"""

_HOURS_SQL = """avg(hours) FILTER (WHERE closed) AS avg_hours,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY hours) FILTER (WHERE closed) AS median_hours"""


def _flags_sql(
    g: Grouping,
    where: str = "",
    per_issue: bool = False,
    key_filter: str = "",
    scan_events: bool = False,
    whole_weeks: bool = False,
    one_period: bool = False,
    many: bool = False,
) -> str:
    # One period: its bounds as constants, so the planner estimates with them (it cannot see
    # into the `periods` array) and the index on closed_at serves the closed candidates.
    f, t = (
        ("CAST(:f1 AS timestamptz)", "CAST(:t1 AS timestamptz)") if one_period else ("p.f", "p.t")
    )
    cand = {
        "t": t,
        "key": g.key_sql,
        "joins": g.joins,
        "where": where,
        "deadline": _as_of("deadline"),
    }
    return _FLAGS_SQL.format(
        # Each third is served by an index (models.Issue): open issues by reported_at; closed
        # ones by closed_at; rejected ones by updated_at, which every update of the row bumps,
        # so one not updated since before the period was rejected before it.
        cand_open=_CAND_SQL.format(closed_filter=f"({UNCLOSED})", **cand),
        cand_closed=_CAND_SQL.format(
            closed_filter=f"i.status = 'closed' AND i.closed_at >= {f}", **cand
        ),
        cand_rejected=_CAND_SQL.format(
            closed_filter=f"i.status = 'rejected' AND i.updated_at >= {f}", **cand
        ),
        moves=(
            _MOVES_EVENTS.format(n="c.n", source=_BY_ISSUE, change=_CHANGE)
            if per_issue
            else _MOVES_EVENTS.format(n="p.n", source=_SCAN, change=_CHANGE)
            if scan_events
            else _MOVES_WEEK
            if whole_weeks
            else _MOVES_ROLLUP.format(change=_CHANGE)
        ),
        moved_state=(
            _MOVED_STATE_WEEK
            if whole_weeks and not (per_issue or scan_events)
            else _MOVED_STATE.format(probe_to=_STATE_PROBE.format(bound="c.t", change=_CHANGE))
        ),
        # One period: every row's n is 1, the issue alone is the key of the hash join.
        moves_on="m.issue_id = c.id" if one_period else "m.n = c.n AND m.issue_id = c.id",
        # One period: the candidates stream into the hash join with the period's moves and
        # on into the aggregate (~100 ms less backend CPU each for the demo county's week than
        # writing and reading ~235,000 rows); a CTE read twice (cand, by the per-issue moves)
        # is materialised all the same. The 通报's shared run (`many`) keeps facts
        # materialised: it unnests every issue's keys into ~940,000 rows (inlined: slower).
        cand_materialized="" if one_period else "MATERIALIZED ",
        facts_materialized="" if one_period and not many else "MATERIALIZED ",
        change=_CHANGE,
        probe_from=(
            _STATE_PROBE_WEEKS
            if whole_weeks and not (per_issue or scan_events)
            else _STATE_PROBE.format(bound="c.f", change=_CHANGE)
        ),
        joins=g.joins,
        event_key=g.event_key_sql or g.key_sql,
        event_prev_key=g.event_prev_key_sql or g.event_key_sql or g.key_sql,
        handed_distinct="TRUE" if many else "v.pk IS DISTINCT FROM v.k",
        key_filter_k=f"k {key_filter}" if key_filter else "TRUE",
        key_filter_pk=f"v.pk {key_filter}" if key_filter else "TRUE",
    )


def _no_jit(session: Session) -> None:
    """JIT compiling the pipeline costs ~100 ms and never pays off here (index-driven). The
    pipeline's materialized steps hold ~200,000 rows for a county's week: with the default
    work_mem (4 MB) they, the hash of the week's rollup and the sort before the grouping
    spill to temporary files."""
    session.execute(text("SET LOCAL jit = off; SET LOCAL work_mem = '64MB'"))


def _params(session: Session, periods: Sequence[Period]) -> dict[str, Any]:
    return {
        "froms": [p.start for p in periods],
        "tos": [p.end for p in periods],
        "open": list(OPEN_STATUSES),
        "f1": periods[0].start,
        "t1": periods[0].end,
        **rollup.params(list(periods), rollup.zone(session)),
    }


def _ratio(num: int, den: int) -> Fraction | None:
    return Fraction(num, den) if den else None


def _round(value: Fraction | None, places: int) -> float | None:
    if value is None:
        return None
    quantum = Decimal(1).scaleb(-places)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(quantum, rounding=ROUND_HALF_UP))


@lru_cache(maxsize=256)
def _weight(value: float) -> Fraction:
    return Fraction(str(value))


def composite_score(
    on_time_rate: Fraction | None,
    close_rate: Fraction | None,
    rework_rate: Fraction | None,
    weights: Mapping[str, float],
    satisfaction_rate: Fraction | None = None,
) -> Fraction | None:
    """100 × Σ wᵢ·rᵢ / Σ wᵢ over the components whose rate is defined.

    With the default weights and every rate defined this is 按期结案率×60 + 结案率×30 +
    (1−返工率)×10. No should-close issue ⇒ no score (nothing was due: the row is not assessed);
    nothing handled ⇒ the rework component drops out and the other weights are rescaled.
    """
    if on_time_rate is None or close_rate is None:
        return None
    parts = [
        (_weight(weights["on_time_rate"]), on_time_rate),
        (_weight(weights["close_rate"]), close_rate),
    ]
    if rework_rate is not None:
        parts.append((_weight(weights["rework_free"]), 1 - rework_rate))
    if satisfaction_rate is not None and weights.get("satisfaction"):
        parts.append((_weight(weights["satisfaction"]), satisfaction_rate))
    total = sum(w for w, _ in parts)
    if not total:
        return None
    return 100 * sum(w * r for w, r in parts) / total


@lru_cache(maxsize=64)
def _integer_weights(weights: tuple[float, ...]) -> tuple[int, ...]:
    """The weights (on time, close, rework-free, satisfaction) as integers in the same ratio."""
    exact = [_weight(w) for w in weights]
    common = lcm(*(w.denominator for w in exact))
    return tuple(int(w * common) for w in exact)


def _half_up(num: int, den: int, places: int) -> float:
    """num / den rounded half-up (away from zero) to `places` decimals, in integers: the same
    float as `_round(Fraction(num, den), places)`, without a Fraction or a Decimal."""
    if num < 0:
        return -_half_up(-num, den, places)
    scale = 10**places
    return ((2 * num * scale + den) // (2 * den)) / scale


def _score(
    row: dict[str, Any], weights: Mapping[str, float], satisfied: int, answers: int
) -> float | None:
    """`composite_score` of the row's counts, rounded to 2 decimals, in integer arithmetic
    (exactly the same value: tests/test_ranking_rollup.py compares them)."""
    return _score_ints(
        _weights_as_integers(weights),
        row["should_close"],
        row["closed"],
        row["closed_on_time"],
        row["handled"],
        row["reworked"],
        satisfied,
        answers,
    )


def _weights_as_integers(weights: Mapping[str, float]) -> tuple[int, ...]:
    """The weights (on time, close, rework-free, satisfaction) as integers in the same ratio."""
    return _integer_weights(
        (
            weights["on_time_rate"],
            weights["close_rate"],
            weights["rework_free"],
            weights.get("satisfaction") or 0,
        )
    )


def _score_ints(
    integer_weights: tuple[int, ...],
    should_close: int,
    closed: int,
    closed_on_time: int,
    handled: int,
    reworked: int,
    satisfied: int,
    answers: int,
) -> float | None:
    """`_score` of the counts themselves, the weights as `_weights_as_integers` gives them
    (worked out once per period for a ranking's rows, not once per row)."""
    if not should_close:
        return None
    w_on_time, w_close, w_rework, w_satisfaction = integer_weights
    # Σ wᵢ·rᵢ as num / den: 按期结案率 and 结案率 share the denominator 应结案数.
    num = w_on_time * closed_on_time + w_close * closed
    den, total = should_close, w_on_time + w_close
    if handled:
        num = num * handled + w_rework * (handled - reworked) * den
        den *= handled
        total += w_rework
    if answers and w_satisfaction:
        num = num * answers + w_satisfaction * satisfied * den
        den *= answers
        total += w_satisfaction
    if not total:
        return None
    return _half_up(100 * num, den * total, 2)


def _finish_row(
    row: dict[str, Any], settings: Settings, satisfaction: tuple[int, int] = (0, 0)
) -> dict[str, Any]:
    """Rates, 群众满意率 and the score of a row of counts (definitions: `composite_score`)."""
    for name, (a, b) in RATE_PARTS.items():
        row[name] = _half_up(row[a], row[b], 4) if row[b] else None
    satisfied, answers = satisfaction
    row["satisfaction_answers"] = answers
    row["satisfaction_rate"] = _half_up(satisfied, answers, 4) if answers else None
    row["score"] = _score(row, settings.weights, satisfied, answers)
    return row


def _rank(rows: list[dict[str, Any]], settings: Settings, ranked: bool) -> list[dict[str, Any]]:
    """Competition ranking (1, 2, 2, 4) on the score as shown (2 decimals)."""
    eligible = (
        [r for r in rows if r["key"] is not None and r["score"] is not None] if ranked else []
    )
    scores = sorted(r["score"] for r in eligible)
    n = len(eligible)
    for r in rows:
        r["ranked"] = False
        r["rank"] = None
        r["bottom"] = False
        r["below_threshold"] = False
    for r in eligible:
        r["ranked"] = True
        r["rank"] = 1 + n - bisect_right(scores, r["score"])
        worst_rank = 1 + bisect_left(scores, r["score"])
        r["bottom"] = n > settings.bottom_n and worst_rank <= settings.bottom_n
        r["below_threshold"] = r["score"] < settings.threshold
    for r in rows:
        r["flagged"] = r["bottom"] or r["below_threshold"]
    # Order: assigned before unassigned, ranked before not, rank, score (highest first), name.
    # Stable sorts from the last key to the first (a grid ranking has ~30,000 rows).
    rows.sort(key=lambda r: str(r["name"]))
    rows.sort(key=lambda r: -(r["score"] if r["score"] is not None else -1))
    rows.sort(key=lambda r: r["rank"] or 0)
    rows.sort(key=lambda r: (r["key"] is None) * 2 + (not r["ranked"]))
    return rows


def _labels(session: Session, g: Grouping, keys: list[Any], registry: LayerRegistry) -> dict:
    if g.name == "layer":
        titles = {spec.name: spec.title for spec in registry}
        return {k: (titles.get(k, k), {}) for k in keys}
    if g.name == "all":
        name = service_area.place_name(session)
        return {k: (name or "全域", {}) for k in keys}
    if g.labels_sql is None:
        return {k: (k, {}) for k in keys}
    # The keys as one array literal: psycopg2 renders a list as ARRAY[…] of one parameter each,
    # slow for a grid ranking's ~30,000 keys (labels_sql groupings have integer keys).
    literal = "{" + ",".join(str(int(k)) for k in keys) + "}"
    rows = session.execute(text(g.labels_sql), {"keys": literal}).all()
    return {r.k: (r.name, r.detail or {}) for r in rows}


def compute(
    session: Session,
    registry: LayerRegistry,
    of: str,
    periods: Sequence[Period],
    settings: Settings | Sequence[Settings] = DEFAULT_SETTINGS,
    key: Any = ...,
    scan_events: bool = False,
    snapshots: bool = True,
) -> list[list[dict[str, Any]]]:
    """The indicator rows of grouping `of` for each period (one SQL statement for all).

    `key` restricts to one row (None = the unassigned row). `settings`: one for all periods, or
    one per period (geoservice.ranking.vocabularies: the rules in force at each period's start).
    `scan_events` reads the period's events instead of the rollup (same figures; the reference
    for tests and benchmarks). The rows of a closed ISO week, month or quarter (one key's
    too) are read from its snapshot while it is current (geoservice.ranking.snapshot; same
    rows), each period of several on its own, unless `snapshots` is False. Returns one list
    per period.
    """
    g = grouping(registry, of)
    if not periods:
        return []
    per_period = list(settings) if isinstance(settings, list | tuple) else [settings] * len(periods)
    where = ""
    params = _params(session, periods)
    key_filter = ""
    if key is not ...:
        key_filter = f"IS NOT DISTINCT FROM CAST(:key AS {_sql_type(g)})"
        where = f"AND ({g.key_sql}) {key_filter}"
        params["key"] = key
    counts = ",\n  ".join(f"count(*) FILTER (WHERE {c}) AS {c}" for c in COUNTS)
    aggregate = _AGGREGATE_SQL.format(
        counts=counts,
        hours=_HOURS_SQL,
        n="1 AS n" if len(periods) == 1 else "n",
        group="k" if len(periods) == 1 else "n, k",
    )
    # The grid's ~28,000 labels from the process's copy when it is current (~100 ms less
    # backend CPU than looking each one up in the figures' statement), else joined there. One
    # key's row (drill-downs, trends of one row) never reads the whole copy.
    cached = _cached_labels(session, g) if key is ... else None
    _no_jit(session)
    if snapshots and not scan_events:
        if len(periods) == 1:
            stored = _stored_rows(
                session, registry, g, periods[0], params, per_period[0], cached, key
            )
            if stored is not None:
                return [stored]
        else:
            # A trend or the 收结案 chart: each closed week, month or quarter from its snapshot
            # while current, the other periods by the pipeline in one run.
            found = [
                _stored_rows(session, registry, g, p, _params(session, [p]), s, cached, key)
                for p, s in zip(periods, per_period, strict=True)
            ]
            if any(rows is not None for rows in found):
                rest = [i for i, rows in enumerate(found) if rows is None]
                if rest:
                    computed = compute(
                        session,
                        registry,
                        of,
                        [periods[i] for i in rest],
                        [per_period[i] for i in rest],
                        key=key,
                        snapshots=False,
                    )
                    for i, rows in zip(rest, computed, strict=True):
                        found[i] = rows
                return [rows or [] for rows in found]
    sql = _flags_sql(
        g,
        where,
        per_issue=key is not ...,
        key_filter=key_filter,
        scan_events=scan_events,
        whole_weeks=rollup.whole_weeks(params),
        one_period=len(periods) == 1,
    ) + (aggregate if cached is not None else _labelled([g], aggregate))
    return _finish(
        session, registry, g, periods, per_period, *_fetch(session, sql, params), key, cached
    )


def _stored_rows(
    session: Session,
    registry: LayerRegistry,
    g: Grouping,
    period: Period,
    params: dict[str, Any],
    settings: Settings,
    cached: dict[Any, tuple[Any, dict]] | None,
    key: Any = ...,
) -> list[dict[str, Any]] | None:
    """The rows of `g` (only key `key`'s, when given) for a closed week, month or quarter
    (`params`: its `_params`) from the counts stored from its per-issue facts, while they are
    current (ranking.snapshot); None when it has no current snapshot (or holds no row of the
    whole grouping: the pipeline decides then)."""
    if not _snapshot_period([period], params):
        return None
    stored = snapshot.figures_sql(g.name, _key_column(g), one_key=key is not ...)
    valid = snapshot.valid_sql(period.end, _snapshot_tables(registry))
    snap_sql = f"WITH snap AS ({valid})" + (
        stored if cached is not None else _labelled([g], stored)
    )
    lookup = _snapshot_params(registry, period, params)
    if key is not ...:
        lookup["key"] = key
    columns, found = _fetch(session, snap_sql, lookup)
    if found:
        return _finish(session, registry, g, [period], [settings], columns, found, key, cached)[0]
    # No row: none for this key in a current snapshot (a leader with nothing that period,
    # common in a scorecard's trend), or no current snapshot.
    if key is not ... and session.execute(text(valid), lookup).first() is not None:
        return []
    return None


# Per process: (database, label query) → (generation of the label tables, {key: (name,
# detail)}). See `_cached_labels`.
_LABEL_CACHE: dict[tuple[str, str], tuple[int, dict[Any, tuple[Any, dict]]]] = {}
_LABEL_GENERATION_SQL = (
    "SELECT count(*) AS tables, coalesce(sum(generation), 0) AS generation,"
    " coalesce(bool_or(current_setting('geoservice.touched_' || subject, true) = '1'), false)"
    " AS touched FROM data_generations WHERE subject = ANY(CAST(:tables AS text[]))"
)


def _cached_labels_of(session: Session, g: Grouping) -> dict[Any, tuple[Any, dict]] | None:
    """The labels of every key of `g` (`label_keys_sql`) as this process last read them, while
    that copy is current; None when `g` keeps none or a copy cannot be trusted.

    Exact by the write generations (migration 0027, geoservice/httpcache.py): every committed
    write to a table bumps its counter in the same transaction, so an unchanged sum of the
    label tables' counters means unchanged labels. The copy is read in the same statement as
    the counters it is filed under. Writes of the current transaction are not counted until
    it commits: when it has touched a label table (the trigger's transaction-local flag), no
    copy is used, and the labels are read with the figures as for any other grouping."""
    if not g.label_tables or g.label_sql is None or g.label_keys_sql is None:
        return None
    tables = "{" + ",".join(g.label_tables) + "}"
    now = session.execute(text(_LABEL_GENERATION_SQL), {"tables": tables}).one()
    if now.tables != len(g.label_tables) or now.touched:
        return None
    bind = session.get_bind()
    slot = (repr(getattr(bind, "engine", bind).url), g.label_sql)
    held = _LABEL_CACHE.get(slot)
    if held is not None and held[0] == now.generation:
        return held[1]
    rows = session.execute(
        text(
            f"WITH gen AS ({_LABEL_GENERATION_SQL})"
            " SELECT gen.generation, gen.tables, gen.touched, l.k, l.name,"
            " CAST(l.detail AS text) AS detail"
            f" FROM gen LEFT JOIN (SELECT * FROM ({g.label_sql}) l"
            f" WHERE l.k IN ({g.label_keys_sql})) l ON TRUE"
        ),
        {"tables": tables},
    ).all()
    if not rows or rows[0].tables != len(g.label_tables) or rows[0].touched:
        return None
    details = json.loads("[" + ",".join(r.detail or "null" for r in rows if r.k is not None) + "]")
    labels = {
        r.k: (r.name, detail or {})
        for r, detail in zip((r for r in rows if r.k is not None), details, strict=True)
    }
    _LABEL_CACHE[slot] = (int(rows[0].generation), labels)
    return labels


def _cached_labels(session: Session, g: Grouping) -> dict[Any, tuple[Any, dict]] | None:
    """`_cached_labels_of` with the cyclic garbage collector paused (`_gc_paused`): reading
    the 29,803 labels set off ~170 collections, ~0.4 s."""
    return _gc_paused(_cached_labels_of)(session, g)


def _labelled(gs: Sequence[Grouping], aggregate: str) -> str:
    """The figures (`aggregate`, one row per key, or per grouping number `gi` and key for
    several groupings) with each key's label joined: one hash join in the same statement, not
    a second query (30,000 grid labels took ~0.6 s that way). The details come as text,
    decoded in one go by `_finish` (a jsonb column is decoded one call per row)."""
    labelled = [(i, g) for i, g in enumerate(gs, start=1) if g.label_sql is not None]
    if not labelled or (len(gs) > 1 and not all(g.key_type is int for g in gs)):
        return aggregate
    if len(gs) == 1:
        # One grouping: each key's label looked up on its own (a LATERAL kept apart by OFFSET
        # 0, so the key reaches the label's index scans whatever the planner's estimate of the
        # figures), its detail built for that key only. The semi-join below (a hash of the
        # keys, then a hash of the figures) cost ~100 ms more backend CPU for the grid's
        # 28,213 labels.
        ((i, g),) = labelled
        joins = (
            f"LEFT JOIN LATERAL (SELECT * FROM ({g.label_sql}) l WHERE l.k = f.k OFFSET 0)"
            f" lab{i} ON TRUE"
        )
    else:
        # Each label subquery keeps only the keys of the figures before building its detail:
        # a hash join of the whole table built the jsonb of every place (the demo's ~85,000).
        joins = "\n".join(
            f"LEFT JOIN (SELECT * FROM ({g.label_sql}) l WHERE l.k IN (SELECT k FROM figures))"
            f" lab{i} ON lab{i}.k = f.k AND f.gi = {i}"
            for i, g in labelled
        )
    which = " OR ".join(f"f.gi = {i}" for i, _ in labelled) if len(gs) > 1 else "TRUE"
    name = ", ".join(f"lab{i}.name" for i, _ in labelled)
    detail = ", ".join(f"lab{i}.detail" for i, _ in labelled)
    return f""",
figures AS ({aggregate.lstrip(",")})
SELECT f.*, ({which}) AS labelled, coalesce({name}) AS label,
  CAST(coalesce({detail}) AS text) AS label_detail
FROM figures f
{joins}
"""


_F = TypeVar("_F", bound=Callable[..., Any])


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused for the block (left as it is if already paused).

    For a caller that builds a large ranking and drops it again before the block ends (the
    rankings API: the grid's 28,213 row dicts, their JSON, then nothing): paused only while
    the rows are built (`_gc_paused`), the first allocation after it set off a full
    collection walking all of them (~200–250 ms of the grid's API answer, demo county). Freed
    inside the block, they never reach the collector. The rows hold no cycles."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _gc_paused(fn: _F) -> _F:
    """Run `fn` with the cyclic garbage collector paused: building a grid ranking's ~28,000
    row dicts otherwise sets off collections that walk every object made so far (~150 ms of
    the rows' ~400 ms in Python). The rows hold no cycles; the collector resumes after."""

    @wraps(fn)
    def paused(*args: Any, **kwargs: Any) -> Any:
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return paused  # type: ignore[return-value]


@_gc_paused
def _fetch(session: Session, sql: str, params: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """The column names and rows of `sql` (rows as the driver's tuples: 30,000 grid rows)."""
    result = session.execute(text(sql), params)
    return list(result.keys()), result.all()


_COUNT_NAMES = tuple(COUNTS)
# A row's keys, in the order `_finish_row` and `_rank` give them.
_ROW_KEYS = (
    "key",
    "name",
    "detail",
    *COUNTS,
    "avg_hours_to_close",
    "median_hours_to_close",
    *RATE_PARTS,
    "satisfaction_answers",
    "satisfaction_rate",
    "score",
    "ranked",
    "rank",
    "bottom",
    "below_threshold",
    "flagged",
)
_NOT_RANKED = (False, None, False, False, False)  # ranked, rank, bottom, below_threshold, flagged


@_gc_paused
def _finish(
    session: Session,
    registry: LayerRegistry,
    g: Grouping,
    periods: Sequence[Period],
    per_period: list[Settings],
    columns: Sequence[str],
    found: Sequence[Sequence[Any]],
    key: Any = ...,
    cached: dict[Any, tuple[Any, dict]] | None = None,
) -> list[list[dict[str, Any]]]:
    """The rows of grouping `g` from its counts (`found`: rows of `columns`: n, k, the counts
    in COUNTS' order, avg_hours, median_hours, and the joined label if any): what
    `_finish_row` and `_rank` make of each, computed on tuples and each row's dict built
    once, in its final order (a grid ranking's 28,213 dicts of 35 keys do not fit in the
    processor's cache: every further pass over them cost ~20 ms)."""
    satisfaction = followup.satisfaction_counts(
        session, g.key_sql, g.joins, [p.start for p in periods], [p.end for p in periods]
    )
    if key is not ...:
        satisfaction = {(n, k): v for (n, k), v in satisfaction.items() if k == key}
    at = {c: i for i, c in enumerate(columns)}
    n_at, k_at, avg_at, median_at = at["n"], at["k"], at["avg_hours"], at["median_hours"]
    first = at[_COUNT_NAMES[0]]
    last = first + len(_COUNT_NAMES)
    if tuple(columns[first:last]) != _COUNT_NAMES:
        raise AssertionError(f"counts out of order: {columns}")
    labelled_at = at.get("labelled")
    # Rows: those with issue activity, plus those with only 回访 in the period (rate, no score).
    seen = {(r[n_at], r[k_at]) for r in found}
    only_satisfaction = [nk for nk in satisfaction if nk not in seen]
    # Labels: joined in the figures' query (`_labelled`), else looked up here.
    keys = {
        r[k_at]
        for r in found
        if r[k_at] is not None and (labelled_at is None or not r[labelled_at])
    }
    keys.update(k for _, k in only_satisfaction if k is not None)
    if cached is not None:  # `_cached_labels`; each row gets its own copy of the detail
        keys = {k for k in keys if k not in cached}
    labels = _labels(session, g, sorted(keys), registry) if keys else {}
    details: list[Any] = []
    if labelled_at is not None:
        detail_at = at["label_detail"]
        details = json.loads(
            "[" + ",".join(r[detail_at] or "null" for r in found if r[labelled_at]) + "]"
        )
    label_at = at.get("label")
    none_label = g.none_label
    zeros = (0,) * len(_COUNT_NAMES)
    i_closed, i_should, i_on_time, i_handled, i_reworked = (
        _COUNT_NAMES.index(c)
        for c in ("closed", "should_close", "closed_on_time", "handled", "reworked")
    )
    weights = [_weights_as_integers(s.weights) for s in per_period]
    # Per period: (row's values up to its score, score, key is None, name).
    rows: list[list[tuple[tuple[Any, ...], float | None, bool, Any]]] = [[] for _ in periods]
    d = 0
    for r in [*found, *only_satisfaction]:
        if len(r) == 2:  # a row with 回访 only: (n, k)
            n, k = r
            counts, avg, median = zeros, None, None
            if k is None:
                name, detail = None, {}
            elif cached is not None and (label := cached.get(k)) is not None:
                name, detail = label[0], dict(label[1])
            else:
                name, detail = labels.get(k, (None, {}))
        else:
            n, k = r[n_at], r[k_at]
            counts = tuple(r[first:last])  # count(*): already int
            avg, median = r[avg_at], r[median_at]
            if labelled_at is not None and r[labelled_at]:
                name, detail = r[label_at], details[d] or {}
                d += 1
            elif k is None:
                name, detail = None, {}
            elif cached is not None and (label := cached.get(k)) is not None:
                name, detail = label[0], dict(label[1])
            else:
                name, detail = labels.get(k, (None, {}))
        if k is None:
            name, detail = none_label, {}
        closed, should_close, on_time = counts[i_closed], counts[i_should], counts[i_on_time]
        handled, reworked = counts[i_handled], counts[i_reworked]
        satisfied, answers = satisfaction.get((n, k), (0, 0)) if satisfaction else (0, 0)
        score = _score_ints(
            weights[n - 1], should_close, closed, on_time, handled, reworked, satisfied, answers
        )
        values = (
            k,
            name,
            detail,
            *counts,
            None if avg is None else round(float(avg), 2),
            None if median is None else round(float(median), 2),
            # RATE_PARTS (close, on time, rework) as `_finish_row`: `_half_up` to 4 places,
            # written out (counts are never negative).
            (20000 * closed + should_close) // (2 * should_close) / 10000 if should_close else None,
            (20000 * on_time + should_close) // (2 * should_close) / 10000
            if should_close
            else None,
            (20000 * reworked + handled) // (2 * handled) / 10000 if handled else None,
            answers,
            _half_up(satisfied, answers, 4) if answers else None,
            score,
        )
        rows[n - 1].append((values, score, k is None, name))
    return [_ranked(found, per_period[i], g.ranked) for i, found in enumerate(rows)]


def _ranked(
    rows: list[tuple[tuple[Any, ...], float | None, bool, Any]], settings: Settings, ranked: bool
) -> list[dict[str, Any]]:
    """`_rank` of rows given as (values up to the score, score, key is None, name): the same
    ranks, flags and order (tests/test_ranking.py compares them). Each row's dict is made in
    the rows' own order, then the dicts are sorted on keys computed alongside: made after the
    sort, in an order unrelated to where their values lie in memory, the grid's 28,213 dicts
    took twice as long."""
    scores = sorted(s for _, s, unassigned, _ in rows if not unassigned and s is not None)
    n = len(scores) if ranked else 0
    bottom_n, threshold = settings.bottom_n, settings.threshold
    ordered = []
    for values, score, unassigned, name in rows:
        if ranked and score is not None and not unassigned:
            bottom = n > bottom_n and 1 + bisect_left(scores, score) <= bottom_n
            below = score < threshold
            tail = (True, 1 + n - bisect_right(scores, score), bottom, below, bottom or below)
            group = 2 * unassigned
        else:
            tail = _NOT_RANKED
            group = 2 * unassigned + 1
        ordered.append(
            (
                group,
                -(score if score is not None else -1),
                name if type(name) is str else str(name),
                dict(zip(_ROW_KEYS, values + tail, strict=True)),
            )
        )
    # `_rank`'s order: assigned before unassigned, ranked before not, rank, score (highest
    # first), name, by stable sorts from the last key to the first. The rank needs no sort of
    # its own: among ranked rows it falls as the score rises (equal scores, equal ranks), and
    # every other row has none.
    ordered.sort(key=itemgetter(2))
    ordered.sort(key=itemgetter(1))
    ordered.sort(key=itemgetter(0))
    return [o[3] for o in ordered]


@dataclass(frozen=True)
class OverdueAtEnd:
    """The issues open and past their deadline at a period's end (indicator overdue_end of
    grouping `all`): ids with their deadlines as of the end and report times, by id."""

    ids: list[int]
    deadlines: list[datetime]
    reported: list[datetime]


def compute_many(
    session: Session,
    registry: LayerRegistry,
    ofs: Sequence[str],
    period: Period,
    settings: Settings = DEFAULT_SETTINGS,
) -> dict[str, list[dict[str, Any]]]:
    """The rows of several groupings for one period, from one run of the pipeline (the 通报:
    city totals and three rankings). The same rows as `ranking` for each; groupings that need
    joins (community, street, layer) are computed on their own."""
    return figures_and_overdue(session, registry, ofs, period, settings)[0]


def figures_and_overdue(
    session: Session,
    registry: LayerRegistry,
    ofs: Sequence[str],
    period: Period,
    settings: Settings = DEFAULT_SETTINGS,
    snapshots: bool = True,
) -> tuple[dict[str, list[dict[str, Any]]], OverdueAtEnd | None]:
    """`compute_many`, and, when `all` is among `ofs` and shares the run, the issues overdue
    at the period end from the same run (drilldown.overdue_listed lists them)."""
    gs = [grouping(registry, of) for of in ofs]
    out: dict[str, list[dict[str, Any]]] = {}
    overdue: OverdueAtEnd | None = None
    # A closed week, month or quarter with a current snapshot: every grouping from it, in one
    # statement (one view of the data for the figures and the overdue list).
    params = _params(session, [period])
    snapped = snapshots and len(gs) > 1 and all(snapshot.supports(g.name) for g in gs)
    shared = gs if snapped else [g for g in gs if not g.joins]
    all_gi = next((i for i, g in enumerate(shared, start=1) if g.name == "all"), None)
    if snapped and _snapshot_period([period], params):
        params.update(_snapshot_params(registry, period, params))
        params["overdue_gi"] = all_gi or 0
        _no_jit(session)
        tables = _snapshot_tables(registry)
        columns, rows = _fetch(
            session, _snapshot_many_sql(shared, all_gi, period.end, tables), params
        )
        if rows:
            return _collect_many(
                session, registry, shared, period, settings, columns, rows, all_gi
            ), _overdue_of(columns, rows, all_gi)
        shared = [g for g in gs if not g.joins]
        all_gi = next((i for i, g in enumerate(shared, start=1) if g.name == "all"), None)
    if len(shared) > 1:
        # Integer keys sort faster than text: text only when one of the keys is text.
        sql_type = "bigint" if all(g.key_type is int for g in shared) else "text"
        both = Grouping(
            "many",
            "",
            _array((g.key_sql for g in shared), sql_type),
            event_key_sql=_array((g.event_key_sql or g.key_sql for g in shared), sql_type),
            event_prev_key_sql=_array(
                (g.event_prev_key_sql or g.event_key_sql or g.key_sql for g in shared), sql_type
            ),
        )
        params["overdue_gi"] = all_gi or 0
        counts = ",\n  ".join(f"count(*) FILTER (WHERE {c}) AS {c}" for c in COUNTS)
        sql = (
            _flags_sql(both, whole_weeks=rollup.whole_weeks(params), one_period=True, many=True)
            + _PER_KEY_SQL
            + _labelled(
                shared,
                _AGGREGATE_MANY_SQL.format(
                    counts=counts,
                    hours=_HOURS_SQL,
                    overdue=_OVERDUE_ARRAYS_SQL if all_gi else "",
                ),
            )
        )
        _no_jit(session)
        columns, rows = _fetch(session, sql, params)
        out.update(
            _collect_many(session, registry, shared, period, settings, columns, rows, all_gi)
        )
        overdue = _overdue_of(columns, rows, all_gi)
    for of in ofs:
        if of not in out:
            out[of] = ranking(session, registry, of, period, settings, snapshots)
    return out, overdue


def _collect_many(
    session: Session,
    registry: LayerRegistry,
    shared: Sequence[Grouping],
    period: Period,
    settings: Settings,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    all_gi: int | None,
) -> dict[str, list[dict[str, Any]]]:
    """The rows of each grouping of a shared run (columns gi, n, k, the counts, …)."""
    found: dict[int, list[list[Any]]] = {i: [] for i in range(len(shared))}
    at = {c: i for i, c in enumerate(columns)}
    gi_at, k_at = at["gi"], at["k"]
    for r in rows:
        row = list(r)
        g = shared[row[gi_at] - 1]
        if row[k_at] is not None:
            row[k_at] = g.key_type(row[k_at])
        found[row[gi_at] - 1].append(row)
    return {
        g.name: _finish(session, registry, g, [period], [settings], columns, found[i])[0]
        for i, g in enumerate(shared)
    }


def _overdue_of(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], all_gi: int | None
) -> OverdueAtEnd | None:
    """The overdue issues of a shared run that includes `all` (empty lists when none)."""
    if not all_gi:
        return None
    at = {c: i for i, c in enumerate(columns)}
    for row in rows:
        if row[at["overdue_ids"]]:
            return OverdueAtEnd(
                row[at["overdue_ids"]], row[at["overdue_deadlines"]], row[at["overdue_reported"]]
            )
    return OverdueAtEnd([], [], [])


# --- snapshots of closed weeks, months, quarters (geoservice.ranking.snapshot) ------------------


def _snapshot_period(periods: Sequence[Period], params: dict[str, Any]) -> bool:
    """One period that has ended and is a whole ISO week, a calendar month or a quarter: one
    a snapshot may hold (`params`: its `_params`)."""
    return (
        len(periods) == 1
        and periods[0].end <= datetime.now(UTC)
        and (rollup.whole_weeks(params) or periods[0].kind in ("month", "quarter"))
    )


def _joined(gs: Sequence[Grouping]) -> str:
    """The joins of several groupings, each once (community's grid join is also street's)."""
    clauses: list[str] = []
    for g in gs:
        for clause in re.split(r"\s+(?=LEFT JOIN )", g.joins.strip()):
            if clause and clause not in clauses:
                clauses.append(clause)
    return "\n  ".join(clauses)


def _key_column(g: Grouping) -> str:
    """Which key column of ranking_snapshot_figures holds `g`'s keys."""
    return "int" if g.key_type is int else "text"


def snapshot_statements(registry: LayerRegistry, whole_weeks: bool = True) -> tuple[str, list[str]]:
    """The statements filling a snapshot: its rows (the pipeline of the 通报's shared run with
    the key of every grouping snapshot.KEYS offered, its `ind` rows inserted as they are), then
    each grouping's counts aggregated from those rows as the pipeline aggregates them
    (`_AGGREGATE_SQL`). `whole_weeks`: a week's (its rollup rows read whole), else a month's
    or a quarter's (weeks, then days, as the pipeline reads any other period)."""
    available = groupings(registry)
    stored = [available[name] for name in snapshot.KEYS if name in available]
    both = Grouping(
        "snapshot",
        "",
        _array((g.key_sql for g in stored), "text"),
        joins=_joined(stored),
        event_key_sql=_array((g.event_key_sql or g.key_sql for g in stored), "text"),
        event_prev_key_sql=_array(
            (g.event_prev_key_sql or g.event_key_sql or g.key_sql for g in stored), "text"
        ),
    )
    # The tables whose counters the snapshot is filed under are part of its definition.
    tables = ", ".join(_snapshot_tables(registry))
    rows = snapshot.insert_sql(
        _flags_sql(both, whole_weeks=whole_weeks, one_period=True, many=True),
        {g.name: i for i, g in enumerate(stored, start=1)},
    ) + (f"-- generation: issues and events before the end; {tables}\n")
    counts = ",\n  ".join(f"count(*) FILTER (WHERE {c}) AS {c}" for c in COUNTS)
    aggregate = _AGGREGATE_SQL.format(counts=counts, hours=_HOURS_SQL, n="1 AS n", group="k")
    figures = [
        snapshot.figures_insert_sql(g.name, _key_column(g), aggregate)
        for g in [*stored, available["all"]]
    ]
    return rows, figures


def _snapshot_definition(registry: LayerRegistry, whole_weeks: bool) -> str:
    rows, figures = snapshot_statements(registry, whole_weeks)
    return rows + "".join(figures)


def _snapshot_tables(registry: LayerRegistry) -> tuple[str, ...]:
    """The tables the snapshot's keys read besides issues and issue_events: those the
    groupings join (places, the grid table, admin_areas)."""
    available = groupings(registry)
    stored = [available[name] for name in snapshot.KEYS if name in available]
    return tuple(sorted({t for g in stored for t in re.findall(r"JOIN\s+(\w+)", g.joins)}))


def _snapshot_params(
    registry: LayerRegistry, period: Period, params: dict[str, Any]
) -> dict[str, Any]:
    """The lookup of `period`'s snapshot (`params`: its `_params`)."""
    definition = _snapshot_definition(registry, rollup.whole_weeks(params))
    return snapshot.params(period.start, period.end, definition)


def _snapshot_many_sql(
    gs: Sequence[Grouping], all_gi: int | None, end: datetime, tables: Sequence[str]
) -> str:
    """`_AGGREGATE_MANY_SQL`'s rows (gi, n, k, counts, hours, the overdue arrays) from a
    current snapshot: each grouping's stored counts, and the overdue issues from its rows, in
    one statement."""
    sql_type = "bigint" if all(g.key_type is int for g in gs) else "text"
    counts = ", ".join(f"f.{c}" for c in COUNTS)
    branches = []
    for i, g in enumerate(gs, start=1):
        overdue, joins = "", ""
        if all_gi == i:
            overdue = ", o.overdue_ids, o.overdue_deadlines, o.overdue_reported"
            joins = " CROSS JOIN overdue o"
        elif all_gi:
            overdue = (
                ", NULL::bigint[] AS overdue_ids, NULL::timestamptz[] AS overdue_deadlines,"
                " NULL::timestamptz[] AS overdue_reported"
            )
        branches.append(
            f"(SELECT {i} AS gi, 1 AS n, CAST(f.k_{_key_column(g)} AS {sql_type}) AS k,"
            f" {counts}, f.avg_hours, f.median_hours{overdue}"
            f" FROM ranking_snapshot_figures f JOIN snap ON f.snapshot_id = snap.id{joins}"
            f" WHERE f.grouping = '{g.name}' ORDER BY f.n)"
        )
    overdue_cte = ""
    if all_gi:
        overdue_cte = (
            ",\noverdue AS (SELECT array_agg(r.issue_id ORDER BY r.issue_id) AS overdue_ids,"
            " array_agg(r.deadline ORDER BY r.issue_id) AS overdue_deadlines,"
            " array_agg(r.reported_at ORDER BY r.issue_id) AS overdue_reported"
            " FROM ranking_snapshot_rows r JOIN snap ON r.snapshot_id = snap.id"
            " WHERE r.overdue_end)"
        )
    return (
        f"WITH snap AS ({snapshot.valid_sql(end, tables)})"
        + overdue_cte
        + _labelled(gs, "\nUNION ALL\n".join(branches))
    )


def build_snapshot(session: Session, registry: LayerRegistry, period: Period) -> dict[str, Any]:
    """Stores the per-issue facts of a closed ISO week, calendar month or quarter
    (ranking.snapshot), in place of the old ones, in the caller's transaction (the caller
    commits). Refused for a period of another kind, not ended yet, or when this transaction
    has written counted tables (its writes would not be in the generation filed with the
    rows)."""
    params = _params(session, [period])
    if not _snapshot_period([period], params):
        raise RankingError("只能为已结束的整周、整月或整季度生成排名快照", "period")
    t0 = time.perf_counter()
    snapshot.lock(session, period.start, period.end)
    generation = snapshot.current_generation(session, period.end, _snapshot_tables(registry))
    if generation is None:
        raise RankingError("本事务已有未提交的写入，不能生成排名快照", "period")
    _no_jit(session)
    rows_sql, figures = snapshot_statements(registry, rollup.whole_weeks(params))
    rows = snapshot.replace(
        session, period.start, period.end, rows_sql, params, generation, figures
    )
    return {"period": period.label, "rows": rows, "seconds": time.perf_counter() - t0}


def snapshot_status(session: Session, registry: LayerRegistry, period: Period) -> dict[str, Any]:
    """What is stored for `period`: `stored`, `current` (used by the rankings now), rows, when
    built and how long it took."""
    whole_weeks = rollup.whole_weeks(_params(session, [period]))
    return snapshot.status(
        session,
        period.start,
        period.end,
        _snapshot_definition(registry, whole_weeks),
        _snapshot_tables(registry),
    )


def ensure_snapshot(
    session: Session, registry: LayerRegistry, period: Period, force: bool = False
) -> dict[str, Any]:
    """`build_snapshot` unless the stored one is current (or `force`); `built` says which.
    The caller commits."""
    if not force:
        found = snapshot_status(session, registry, period)
        if not found["current"]:
            # Another process may be building it: once it is done, its snapshot may be current.
            snapshot.lock(session, period.start, period.end)
            found = snapshot_status(session, registry, period)
        if found["current"]:
            return {"period": period.label, "built": False, "rows": found["rows"]}
    return {**build_snapshot(session, registry, period), "built": True}


def _array(keys: Any, sql_type: str) -> str:
    return "ARRAY[" + ", ".join(f"CAST(({k}) AS {sql_type})" for k in keys) + "]"


def _sql_type(g: Grouping) -> str:
    return "text" if g.key_type is str else "bigint"


def _hours(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def ranking(
    session: Session,
    registry: LayerRegistry,
    of: str,
    period: Period,
    settings: Settings = DEFAULT_SETTINGS,
    snapshots: bool = True,
) -> list[dict[str, Any]]:
    """The ranking of `of` for one period: rows with every indicator, score, rank and flags.
    `snapshots=False`: the pipeline even when a closed period's snapshot is current."""
    return compute(session, registry, of, [period], settings, snapshots=snapshots)[0]


def totals(
    session: Session, registry: LayerRegistry, period: Period, settings: Settings = DEFAULT_SETTINGS
) -> dict[str, Any]:
    """The city-wide figures of a period (one row; zeros when nothing happened)."""
    rows = compute(session, registry, "all", [period], settings)[0]
    return rows[0] if rows else empty_totals(settings)


def empty_totals(settings: Settings = DEFAULT_SETTINGS) -> dict[str, Any]:
    """The city-wide row of a period in which nothing happened."""
    empty: dict[str, Any] = {"key": 0, "name": "全域", "detail": {}}
    empty.update(dict.fromkeys(COUNTS, 0))
    empty.update({"avg_hours_to_close": None, "median_hours_to_close": None})
    return _rank([_finish_row(empty, settings)], settings, False)[0]


def trend(
    session: Session,
    registry: LayerRegistry,
    of: str,
    periods: Sequence[Period],
    settings: Settings | Sequence[Settings] = DEFAULT_SETTINGS,
    key: Any = ...,
) -> dict[str, Any]:
    """Score and counts per row over consecutive periods (for sparklines), oldest first."""
    per_period = compute(session, registry, of, periods, settings, key=key)
    series: dict[Any, dict[str, list]] = {}
    fields = ("score", "received", "closed", "overdue_end")
    for i, rows in enumerate(per_period):
        for r in rows:
            s = series.get(r["key"])
            if s is None:
                s = series[r["key"]] = {f: [None] * len(periods) for f in fields}
            for f in fields:
                s[f][i] = r[f]
    return {
        "periods": [p.label for p in periods],
        "rows": [{"key": k, **v} for k, v in series.items()],
    }


# The indicators a drill-down lists the issues of (geoservice.ranking.drilldown).
DRILLABLE = tuple(COUNTS)
