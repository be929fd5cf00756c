"""Scores of a round (测评得分), in one pass over the results in force.

- A site's score: points earned over points applicable, as a percentage. 合格 earns the
  standard's 分值; 不合格 earns nothing; 不适用 takes the standard out of both sums. A site whose
  applicable standards are all 不适用 has no score.
- A site is 达标 when every applicable standard has a result and none is 不合格.
- A group (kind, community, street, unit, 点长): its score is the mean of its sites' scores;
  点位达标率 is 达标 sites over assessed sites (sites with at least one result); 负面清单 hits
  count failed negative-list standards.
- Ranks: by score, highest first; equal scores share a rank (1, 2, 2, 4). 后三名: the rows
  at the bottom three positions (ties with the third-last included), only when there are
  more rows than that; the line: score below it (default 85).
- 点长 and unit: the site's primary 包保 leader at the time of its last result in the round
  (the round's last day for sites without results): responsibility is historical.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geoservice import httpcache
from geoservice.assessment.models import AssessmentRound
from geoservice.assessment.rounds import IN_FORCE, get_round
from geoservice.vocab import ISSUE_STATUSES

GROUPINGS: dict[str, str] = {
    "site": "点位",
    "kind": "点位类别",
    "community": "社区",
    "street": "街道",
    "unit": "责任单位",
    "leader": "点长",
}


@dataclass(frozen=True)
class ScoreSettings:
    line: float = 85.0
    bottom_n: int = 3
    timezone: str = "Asia/Shanghai"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ScoreSettings:
        return cls(
            line=float(config.get("ASSESSMENT_LINE", config.get("RANKING_THRESHOLD", 85))),
            bottom_n=int(config.get("RANKING_BOTTOM_N", 3)),
            timezone=str(config.get("TIMEZONE", "Asia/Shanghai")),
        )


def _round_end(found: AssessmentRound, tz: str) -> datetime:
    return datetime.combine(found.ends_on, time(23, 59, 59), tzinfo=ZoneInfo(tz))


SITE_SQL = f"""
WITH eff AS MATERIALIZED (
  SELECT r.site_id, r.outcome, r.recorded_at, sd.score::float8 AS score, sd.negative_list
  FROM assessment_results r
  JOIN standards sd ON sd.id = r.standard_id
  JOIN sites rsite ON rsite.id = r.site_id
  JOIN standard_kinds sk ON sk.standard_id = r.standard_id AND sk.kind_id = rsite.kind_id
  WHERE r.round_id = :round AND {IN_FORCE}
),
recorded AS (
  SELECT site_id,
    COALESCE(sum(score) FILTER (WHERE outcome = 'pass'), 0) AS earned,
    COALESCE(sum(score) FILTER (WHERE outcome IN ('pass', 'fail')), 0) AS possible,
    count(*) AS recorded,
    count(*) FILTER (WHERE outcome = 'fail') AS failed,
    count(*) FILTER (WHERE outcome = 'fail' AND negative_list) AS negative,
    max(recorded_at) AS at
  FROM eff GROUP BY site_id
),
kind_applicable AS (
  SELECT sk.kind_id, count(*) AS applicable
  FROM standard_kinds sk JOIN standards sd ON sd.id = sk.standard_id AND sd.version_id = :version
  GROUP BY sk.kind_id
),
per_site AS (
  SELECT rs.site_id, COALESCE(rc.earned, 0) AS earned, COALESCE(rc.possible, 0) AS possible,
    ka.applicable, COALESCE(rc.recorded, 0) AS recorded, COALESCE(rc.failed, 0) AS failed,
    COALESCE(rc.negative, 0) AS negative, rc.at
  FROM round_sites rs JOIN sites s0 ON s0.id = rs.site_id
  JOIN kind_applicable ka ON ka.kind_id = s0.kind_id
  LEFT JOIN recorded rc ON rc.site_id = rs.site_id
  WHERE rs.round_id = :round
)
SELECT ps.*, p.code, p.name, s.kind_id, k.name AS kind_name, s.community_area_id AS community_id,
  c.name AS community_name, c.parent_id AS street_id, st.name AS street_name,
  lead.leader_id, lead.leader_name, lead.unit_id, lead.unit_name,
  ST_X(ST_PointOnSurface(s.geom)) AS lon, ST_Y(ST_PointOnSurface(s.geom)) AS lat, k.colour
FROM per_site ps JOIN sites s ON s.id = ps.site_id JOIN places p ON p.id = s.id
JOIN site_kinds k ON k.id = s.kind_id
LEFT JOIN admin_areas c ON c.id = s.community_area_id
LEFT JOIN admin_areas st ON st.id = c.parent_id
LEFT JOIN LATERAL (
  SELECT a.leader_id, l.name AS leader_name, l.unit_id, u.name AS unit_name
  FROM assignments a JOIN leaders l ON l.id = a.leader_id LEFT JOIN units u ON u.id = l.unit_id
  WHERE a.place_id = s.id AND a.is_primary
    AND a.valid_from <= COALESCE(ps.at, :round_end)
    AND (a.valid_to IS NULL OR a.valid_to > COALESCE(ps.at, :round_end))
  ORDER BY a.valid_from DESC LIMIT 1
) lead ON TRUE
ORDER BY ps.site_id"""


# What a round's site scores are computed from (SITE_SQL and the round itself).
SCORED_TABLES = (
    "admin_areas",
    "assessment_results",
    "assessment_rounds",
    "assignments",
    "leaders",
    "places",
    "round_sites",
    "site_kinds",
    "sites",
    "standard_kinds",
    "standards",
    "units",
)
# A city's round scores ~9,000 sites in ~0.4 s, and the assessment page shows two rounds (the
# trend's previous one): kept per process while none of SCORED_TABLES has changed. A row's values
# are immutable (numbers, text, dates): a copy of each row is a caller's own copy.
_KEPT = httpcache.KeptByGeneration(size=16, copy_value=lambda rows: [dict(row) for row in rows])


def site_scores(session: Session, round_id: int, settings: ScoreSettings) -> list[dict[str, Any]]:
    """Every site of the round with its figures (sites of kinds with no standards omitted)."""
    key = (repr(session.get_bind().engine.url), round_id, settings)
    return _KEPT.get(
        session, key, SCORED_TABLES, lambda _generation: _site_scores(session, round_id, settings)
    )


def _site_scores(session: Session, round_id: int, settings: ScoreSettings) -> list[dict[str, Any]]:
    found = get_round(session, round_id)
    rows = session.execute(
        text(SITE_SQL),
        {
            "round": found.id,
            "version": found.version_id,
            "round_end": _round_end(found, settings.timezone),
        },
    )
    out = []
    for r in rows:
        row = dict(r._mapping)
        earned, possible = float(row["earned"]), float(row["possible"])
        row["earned"], row["possible"] = earned, possible
        row["assessed"] = row["recorded"] > 0
        row["complete"] = row["recorded"] == row["applicable"]
        row["raw_score"] = 100.0 * earned / possible if possible > 0 else None
        row["score"] = round(row["raw_score"], 2) if possible > 0 else None
        row["passed"] = row["complete"] and row["failed"] == 0
        out.append(row)
    return out


_KEYS = {
    "site": ("site_id", "name"),
    "kind": ("kind_id", "kind_name"),
    "community": ("community_id", "community_name"),
    "street": ("street_id", "street_name"),
    "unit": ("unit_id", "unit_name"),
    "leader": ("leader_id", "leader_name"),
}
NONE_LABELS = {
    "community": "（未归属社区）",
    "street": "（未归属街道）",
    "unit": "（未落实责任单位）",
    "leader": "（未落实点长）",
}


def _rank(rows: list[dict[str, Any]], settings: ScoreSettings) -> list[dict[str, Any]]:
    """Competition ranks by score. The group of sites with no unit, 点长, street… (key None:
    「（未落实点长）」) is shown but never ranked, nor counted among the last, as in the issue
    rankings (docs/rankings.md)."""
    ranked = [r for r in rows if r["score"] is not None and r.get("key") is not None]
    ranked.sort(key=lambda r: (-r["score"], -(r["pass_rate"] or 0), str(r["name"])))
    previous, rank = None, 0
    for position, r in enumerate(ranked, start=1):
        if r["score"] != previous:
            rank, previous = position, r["score"]
        r["rank"] = rank
    cutoff = None
    if len(ranked) > settings.bottom_n > 0:
        cutoff = ranked[len(ranked) - settings.bottom_n]["score"]
    counted = {id(r) for r in ranked}
    for r in rows:
        r.setdefault("rank", None)
        inside = id(r) in counted
        r["bottom"] = inside and cutoff is not None and r["score"] <= cutoff
        r["below_line"] = inside and r["score"] < settings.line
    unranked = [r for r in rows if id(r) not in counted]
    return ranked + sorted(unranked, key=lambda r: str(r["name"]))


def group_scores(
    sites: list[dict[str, Any]], of: str, settings: ScoreSettings
) -> list[dict[str, Any]]:
    """Rows per group `of` (see GROUPINGS), ranked."""
    if of not in GROUPINGS:
        raise ValueError(of)
    if of == "site":
        rows = [
            {
                "key": s["site_id"],
                "name": s["name"],
                "code": s["code"],
                "kind": s["kind_name"],
                "street": s["street_name"],
                "leader": s["leader_name"],
                "score": s["score"],
                "earned": s["earned"],
                "possible": s["possible"],
                "sites": 1,
                "assessed": int(s["assessed"]),
                "passed": int(s["passed"]),
                "pass_rate": (1.0 if s["passed"] else 0.0) if s["assessed"] else None,
                "failed": s["failed"],
                "negative": s["negative"],
            }
            for s in sites
        ]
        return _rank(rows, settings)
    key_col, name_col = _KEYS[of]
    groups: dict[Any, dict[str, Any]] = {}
    for s in sites:
        key = s[key_col]
        g = groups.setdefault(
            key,
            {"key": key, "name": s[name_col] or NONE_LABELS.get(of, "（无）"), "scores": [],
             "sites": 0, "assessed": 0, "passed": 0, "failed": 0, "negative": 0},
        )  # fmt: skip
        g["sites"] += 1
        g["assessed"] += int(s["assessed"])
        g["passed"] += int(s["passed"])
        g["failed"] += s["failed"]
        g["negative"] += s["negative"]
        if s["raw_score"] is not None:
            g["scores"].append(s["raw_score"])
    rows = []
    for g in groups.values():
        scores = g.pop("scores")
        g["score"] = round(sum(scores) / len(scores), 2) if scores else None
        g["pass_rate"] = round(g["passed"] / g["assessed"], 4) if g["assessed"] else None
        rows.append(g)
    return _rank(rows, settings)


def totals(sites: list[dict[str, Any]], settings: ScoreSettings) -> dict[str, Any]:
    scores = [s["raw_score"] for s in sites if s["raw_score"] is not None]
    assessed = sum(1 for s in sites if s["assessed"])
    passed = sum(1 for s in sites if s["passed"])
    return {
        "sites": len(sites),
        "assessed": assessed,
        "passed": passed,
        "pass_rate": round(passed / assessed, 4) if assessed else None,
        "score": round(sum(scores) / len(scores), 2) if scores else None,
        "failed": sum(s["failed"] for s in sites),
        "negative": sum(s["negative"] for s in sites),
        "line": settings.line,
    }


def round_scores(
    session: Session, round_id: int, of: str, settings: ScoreSettings
) -> dict[str, Any]:
    sites = site_scores(session, round_id, settings)
    return {
        "round_id": round_id,
        "of": of,
        "of_title": GROUPINGS[of],
        "totals": totals(sites, settings),
        "rows": group_scores(sites, of, settings),
    }


def trend(
    session: Session,
    of: str | None,
    key: Any,
    settings: ScoreSettings,
    limit: int = 12,
    computed: Mapping[int, list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """Score and 达标率 per round (oldest first), county-wide or of one group. `computed`:
    `site_scores` of rounds the caller already has (by round id), not computed again."""
    rounds = session.scalars(
        select(AssessmentRound).order_by(AssessmentRound.starts_on.desc()).limit(limit)
    ).all()
    out = []
    for found in reversed(rounds):
        known = (computed or {}).get(found.id)
        sites = known if known is not None else site_scores(session, found.id, settings)
        if of is not None:
            key_col = _KEYS[of][0]
            sites = [s for s in sites if s[key_col] == key]
        figures = totals(sites, settings)
        out.append({"round_id": found.id, "round": found.name,
                    "ends_on": found.ends_on.isoformat(), **figures})  # fmt: skip
    return out


def previous_text(outcome: str | None, issue_status: str | None) -> str:
    """What the previous round said of the same site and standard."""
    if outcome == "fail":
        if issue_status == "closed":
            return "上轮不合格，已销号后又出现（反弹）"
        return "上轮也不合格（未整改到位）"
    if outcome == "pass":
        return "上轮合格（新发现）"
    if outcome == "na":
        return "上轮不适用"
    return "上轮未测"


def failures(
    session: Session,
    round_id: int,
    settings: ScoreSettings,
    of: str | None = None,
    key: Any = None,
) -> list[dict[str, Any]]:
    """The failed standards in force (drill-down), with their photo, issue and what the
    previous round said of the same site and standard (fixed, or came back: 反弹)."""
    found = get_round(session, round_id)
    site_ids: list[int] | None = None
    if of is not None:
        key_col = _KEYS[of][0]
        site_ids = [
            s["site_id"] for s in site_scores(session, round_id, settings) if s[key_col] == key
        ]
    rows = session.execute(
        text(
            f"""SELECT r.id, r.site_id, p.code AS site_code, p.name AS site_name,
  k.name AS kind_name, sd.code, sd.text, sd.score, sd.category, sd.negative_list, r.note,
  r.photo_id, r.issue_id, i.status AS issue_status, r.recorded_at, r.far,
  prev.outcome AS previous_outcome, prev.status AS previous_issue_status
FROM assessment_results r
JOIN standards sd ON sd.id = r.standard_id
JOIN places p ON p.id = r.site_id JOIN sites s ON s.id = r.site_id
JOIN site_kinds k ON k.id = s.kind_id
LEFT JOIN issues i ON i.id = r.issue_id
LEFT JOIN LATERAL (
  SELECT r2.outcome, i2.status FROM assessment_results r2
  JOIN assessment_rounds ar ON ar.id = r2.round_id
  JOIN standards sd2 ON sd2.id = r2.standard_id
  LEFT JOIN issues i2 ON i2.id = r2.issue_id
  WHERE r2.site_id = r.site_id AND sd2.code = sd.code AND ar.starts_on < :starts
    AND NOT EXISTS (SELECT 1 FROM assessment_results c WHERE c.corrects_id = r2.id)
  ORDER BY ar.starts_on DESC LIMIT 1
) prev ON TRUE
WHERE r.round_id = :round AND r.outcome = 'fail' AND {IN_FORCE}
  AND (CAST(:ids AS bigint[]) IS NULL OR r.site_id = ANY(CAST(:ids AS bigint[])))
ORDER BY sd.negative_list DESC, p.code, sd.position"""
        ),
        {"round": found.id, "starts": found.starts_on, "ids": site_ids},
    )
    out = []
    for r in rows:
        row = dict(r._mapping)
        row["score"] = float(row["score"])
        row["recorded_at"] = row["recorded_at"].isoformat()
        row["trend"] = previous_text(row["previous_outcome"], row["previous_issue_status"])
        row["issue_status_label"] = ISSUE_STATUSES.get(row["issue_status"] or "", "")
        out.append(row)
    return out
