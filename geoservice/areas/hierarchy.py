"""The admin hierarchy (街道 → 社区 → 网格): linking children to parents, and the decisions that
settle disagreements between a child's code and its geometry.

An *edge* links one kind of child to its parents:

- admin areas of one rank to the areas of the next rank present (community → street,
  street → district/county, county → city; a missing rank is skipped);
- the features of every layer that has an area link column (`<level>_id`, e.g. a grid's
  `community_id`) to the areas of that level.

For each child the link is read two ways:

- **code**: the parent its code names (GB/T prefix: 320505006023001 → 320505006023; a local
  code, the part before its last separator: TS-3-3 → TS-3; see geoservice.areas.levels);
- **geometry**: the parent it overlaps most (areas in m² on the spheroid); overlaps smaller
  than `sliver_m2` are ignored (slivers of boundaries digitised twice).

When both name the same parent, that is the link. When they disagree, the geometry wins by
default (it is where the place really is, and what attribution uses), and the disagreement is
reported until a planner accepts one side (`decide`, `flask link-areas --accept code|geometry
--only CODE`): decisions are rows of `area_link_decisions` (history kept) and are applied on
every later run. A child whose code names no existing parent is linked by geometry and
reported; one that overlaps no parent is linked by code, or left unlinked, and reported.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.areas.levels import LEVEL_TITLES, LEVELS, RANK, claimed_parent, levels_of_rank
from geoservice.models import AreaLinkDecision
from geoservice.placegeom import literal
from geoservice.registry import LayerRegistry

DEFAULT_SLIVER_M2 = 10.0

STATUS_TITLES = {
    "agree": "编码与位置一致",
    "no_claim": "编码未指明上级，按位置归属",
    "code_vs_geometry": "编码与位置不一致",
    "code_unmatched": "编码前缀无对应上级",
    "outside": "不在任何上级范围内",
    "orphan": "无法归属（不在任何上级范围内，编码也无对应上级）",
}
DISAGREEMENTS = ("code_vs_geometry", "code_unmatched", "outside", "orphan")


@dataclass(frozen=True)
class Edge:
    kind: str  # "area" or a layer name
    child_title: str
    parent_title: str
    child_levels: tuple[str, ...]  # areas only
    parent_levels: tuple[str, ...]
    table: str
    column: str

    @property
    def title(self) -> str:
        return f"{self.child_title} → {self.parent_title}"

    def children_sql(self) -> str:
        """(id, code, name, geom, current parent id) of the children."""
        if self.kind == "area":
            return (
                "SELECT a.id, a.code, a.name, a.geom, a.parent_id AS current FROM admin_areas a"
                f" WHERE a.level IN ({_levels(self.child_levels)})"
            )
        return (
            f"SELECT l.id, p.code, p.name, l.geom, l.{self.column} AS current"
            f" FROM {self.table} l JOIN places p ON p.id = l.id"
        )


def _levels(levels: tuple[str, ...]) -> str:
    return ", ".join(literal(level) for level in levels)


def _title(levels: tuple[str, ...]) -> str:
    return "/".join(LEVEL_TITLES[level] for level in levels)


def present_levels(session: Session) -> set[str]:
    return set(session.execute(text("SELECT DISTINCT level FROM admin_areas")).scalars())


def edges(session: Session, registry: LayerRegistry) -> list[Edge]:
    """Every child → parent link the current data has, top of the hierarchy first."""
    present = present_levels(session)
    ranks = sorted({RANK[level] for level in present}, reverse=True)
    out = []
    for parent_rank, child_rank in pairwise(ranks):
        parents = tuple(lv for lv in levels_of_rank(parent_rank) if lv in present)
        children = tuple(lv for lv in levels_of_rank(child_rank) if lv in present)
        out.append(
            Edge(
                "area",
                _title(children),
                _title(parents),
                children,
                parents,
                "admin_areas",
                "parent_id",
            )
        )
    for spec in registry:
        for link in spec.area_links():
            if link.prefix in LEVELS and link.prefix in present:
                out.append(
                    Edge(
                        spec.name,
                        spec.title,
                        LEVEL_TITLES[link.prefix],
                        (),
                        (link.prefix,),
                        spec.table,
                        link.column,
                    )
                )
    return out


@dataclass
class Parent:
    id: int
    code: str
    name: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "name": self.name}


@dataclass
class Link:
    """One child: what its code and its geometry say, and where it is (to be) linked."""

    edge: Edge
    id: int
    code: str
    name: str
    area_m2: float
    current: int | None
    claimed: str | None  # the parent code its code names (None: it names none)
    by_code: Parent | None
    by_geometry: Parent | None
    overlaps: list[tuple[Parent, float]]  # significant overlaps, largest first (m²)
    outside_m2: float  # area in no parent
    status: str = ""
    accepted: str | None = None  # the decision in force: "code" / "geometry"
    chosen: Parent | None = None

    @property
    def disagrees(self) -> bool:
        return self.status in DISAGREEMENTS

    @property
    def straddles(self) -> bool:
        return len(self.overlaps) > 1

    def describe(self, with_label: bool = True) -> str:
        """One Chinese line for reports."""
        edge = self.edge
        label = f"{self.code} {self.name}"
        geo = self.by_geometry
        share = f"（重叠 {self.overlaps[0][1] / self.area_m2:.1%}）" if geo and self.area_m2 else ""
        if self.status == "code_vs_geometry":
            text_ = (
                f"编码指向{edge.parent_title} {self.by_code.code} {self.by_code.name}，"
                f"位置在 {geo.code} {geo.name}{share}"
            )
        elif self.status == "code_unmatched":
            text_ = (
                f"编码前缀 {self.claimed} 无对应{edge.parent_title}；位置在 {geo.code} {geo.name}"
                f"{share}"
            )
        elif self.status == "outside":
            text_ = (
                f"不在任何{edge.parent_title}范围内；编码指向 {self.by_code.code} "
                f"{self.by_code.name}"
            )
        elif self.status == "orphan":
            claim = f"编码前缀 {self.claimed} 也无对应" if self.claimed else "编码未指明上级"
            text_ = f"不在任何{edge.parent_title}范围内，{claim}：未归属"
        else:
            text_ = STATUS_TITLES[self.status]
        if self.chosen is not None:
            side = {"code": "按编码", "geometry": "按位置"}.get(self.accepted or "", "")
            how = f"已确认{side}" if self.accepted else "暂按位置"
            if self.status == "outside" and not self.accepted:
                how = "暂按编码"
            text_ += f" → {how}归属 {self.chosen.code} {self.chosen.name}"
        return f"{label}：{text_}" if with_label else text_

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.edge.kind,
            "edge": self.edge.title,
            "id": self.id,
            "code": self.code,
            "name": self.name,
            "status": self.status,
            "status_title": STATUS_TITLES[self.status],
            "claimed_parent": self.claimed,
            "by_code": self.by_code.as_dict() if self.by_code else None,
            "by_geometry": self.by_geometry.as_dict() if self.by_geometry else None,
            "overlaps": [{**p.as_dict(), "overlap_m2": round(m2, 1)} for p, m2 in self.overlaps],
            "area_m2": round(self.area_m2, 1),
            "outside_m2": round(self.outside_m2, 1),
            "accepted": self.accepted,
            "parent": self.chosen.as_dict() if self.chosen else None,
            "message": self.describe(),
            "detail": self.describe(with_label=False),
        }


@dataclass
class EdgeResult:
    """One edge's outcome: counts per status over every child, and the children worth
    reporting (`links`: disagreements, straddlers, those partly outside); agreeing children
    are counted, not kept, so that 200,000 grids do not sit in memory."""

    edge: Edge
    links: list[Link] = field(default_factory=list)
    total: int = 0
    counter: Counter = field(default_factory=Counter)
    changed: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.counter)

    @property
    def disagreements(self) -> list[Link]:
        return [link for link in self.links if link.disagrees]

    def as_dict(self, limit: int | None = None) -> dict[str, Any]:
        disagreements = self.disagreements
        return {
            "kind": self.edge.kind,
            "edge": self.edge.title,
            "children": self.total,
            "counts": self.counts,
            "changed": self.changed,
            "unresolved": sum(1 for link in disagreements if link.accepted is None),
            "disagreements": [link.as_dict() for link in disagreements[:limit]],
        }


@dataclass
class LinkReport:
    edges: list[EdgeResult] = field(default_factory=list)
    sliver_m2: float = DEFAULT_SLIVER_M2

    @property
    def changed(self) -> int:
        return sum(e.changed for e in self.edges)

    @property
    def unresolved(self) -> int:
        return sum(1 for e in self.edges for link in e.disagreements if link.accepted is None)

    def find(self, code: str) -> list[Link]:
        return [link for e in self.edges for link in e.links if link.code == code]

    def as_dict(self, limit: int | None = None) -> dict[str, Any]:
        return {
            "sliver_m2": self.sliver_m2,
            "changed": self.changed,
            "unresolved": self.unresolved,
            "edges": [e.as_dict(limit) for e in self.edges],
        }

    def lines(self, listed: int | None = 50) -> list[str]:
        out = []
        for e in self.edges:
            counts = e.counts
            parts = [f"{STATUS_TITLES[s]} {n}" for s, n in sorted(counts.items())]
            out.append(
                f"{e.edge.title}：{e.total} 个，" + ("，".join(parts) or "无")
                + (f"；本次改变归属 {e.changed} 个" if e.changed else "")
            )  # fmt: skip
            shown = e.disagreements if listed is None else e.disagreements[:listed]
            for link in shown:
                mark = "✓" if link.accepted else "✗"
                out.append(f"  {mark} {link.describe()}")
            if len(shown) < len(e.disagreements):
                out.append(f"  … 另有 {len(e.disagreements) - len(shown)} 个（--all 全部列出）")
            for link in e.links:
                if link.straddles and not link.disagrees:
                    others = "、".join(f"{p.code} {m2:.0f} m²" for p, m2 in link.overlaps[1:])
                    out.append(
                        f"  ! {link.code} {link.name} 跨越多个{e.edge.parent_title}：{others}"
                    )
        if self.unresolved:
            out.append(
                f"有 {self.unresolved} 处编码与位置不一致尚未确认：可用 flask link-areas --accept"
                " code|geometry [--only 编码 …] 确认按编码或按位置归属"
            )
        return out


# ---- analysis --------------------------------------------------------------------------------


def _decisions(session: Session) -> dict[tuple[str, str], str]:
    rows = session.execute(
        text(
            "SELECT DISTINCT ON (kind, child_code) kind, child_code, accept"
            " FROM area_link_decisions ORDER BY kind, child_code, id DESC"
        )
    ).all()
    return {(kind, code): accept for kind, code, accept in rows}


CHUNK = 10_000  # children analysed (and written) at a time


def analyse_edge(
    session: Session,
    edge: Edge,
    decisions: dict[tuple[str, str], str],
    sliver_m2: float = DEFAULT_SLIVER_M2,
    write: bool = False,
) -> EdgeResult:
    """Reads every child of the edge, `CHUNK` at a time (in id order, by the primary key),
    and settles its link; with `write`, stores the links that change."""
    parents = {
        row.id: Parent(row.id, row.code, row.name)
        for row in session.execute(
            text(
                "SELECT id, code, name FROM admin_areas"
                f" WHERE level IN ({_levels(edge.parent_levels)})"
            )
        )
    }
    by_code = {p.code: p for p in parents.values()}
    result = EdgeResult(edge)
    after = 0
    while True:
        # The chunk first (primary key order), then each child's parents through the areas'
        # GiST index: a plan that holds whatever the statistics say after a bulk insert.
        rows = session.execute(
            text(f"""
WITH c AS MATERIALIZED (
  SELECT * FROM ({edge.children_sql()}) c WHERE c.id > :after ORDER BY c.id LIMIT :n)
SELECT c.id, c.code, c.name, c.current, ST_Area(c.geom::geography), o.parent_id, o.overlap_m2
FROM c LEFT JOIN LATERAL (
  SELECT p.id AS parent_id,
    CASE WHEN ST_CoveredBy(c.geom, p.geom) THEN ST_Area(c.geom::geography)
         ELSE ST_Area(ST_Intersection(c.geom, p.geom)::geography) END AS overlap_m2
  FROM admin_areas p
  WHERE p.level IN ({_levels(edge.parent_levels)}) AND p.geom && c.geom
    AND ST_Intersects(c.geom, p.geom)) o ON true
ORDER BY c.id"""),
            {"after": after, "n": CHUNK},
        ).all()
        if not rows:
            break
        overlaps: dict[int, list[tuple[Parent, float]]] = defaultdict(list)
        children = []
        for child_id, code, name, current, area_m2, parent_id, m2 in rows:
            if not children or children[-1][0] != child_id:
                children.append((child_id, code, name, current, area_m2))
            if parent_id is not None:
                overlaps[child_id].append((parents[parent_id], float(m2 or 0.0)))
        changes = []
        for child_id, code, name, current, area_m2 in children:
            found = sorted(overlaps.get(child_id, []), key=lambda x: -x[1])
            significant = [(p, m2) for p, m2 in found if m2 >= sliver_m2]
            area_m2 = float(area_m2 or 0.0)
            claimed = claimed_parent(code, edge.parent_levels, by_code)
            link = Link(
                edge=edge,
                id=child_id,
                code=code,
                name=name,
                area_m2=area_m2,
                current=current,
                claimed=claimed,
                by_code=by_code.get(claimed) if claimed else None,
                by_geometry=significant[0][0] if significant else None,
                overlaps=significant,
                outside_m2=max(area_m2 - sum(m2 for _p, m2 in found), 0.0),
            )
            _settle(link, decisions.get((edge.kind, code)))
            result.total += 1
            result.counter[link.status] += 1
            if link.disagrees or link.straddles or link.outside_m2 >= sliver_m2:
                result.links.append(link)
            chosen = link.chosen.id if link.chosen else None
            if chosen != current:
                changes.append((child_id, chosen))
        if write and changes:
            _write(session, edge, changes)
            result.changed += len(changes)
        after = children[-1][0]
    result.links.sort(key=lambda link: link.code)
    return result


def _settle(link: Link, decision: str | None) -> None:
    code, geo = link.by_code, link.by_geometry
    if code is not None and geo is not None:
        link.status = "agree" if code.id == geo.id else "code_vs_geometry"
    elif geo is not None:
        link.status = "no_claim" if link.claimed is None else "code_unmatched"
    elif code is not None:
        link.status = "outside"
    else:
        link.status = "orphan"
    default = geo or code
    if link.disagrees and decision == "code" and code is not None:
        link.accepted, link.chosen = "code", code
    elif link.disagrees and decision == "geometry" and geo is not None:
        link.accepted, link.chosen = "geometry", geo
    else:
        link.chosen = default


def analyse(
    session: Session, registry: LayerRegistry, sliver_m2: float = DEFAULT_SLIVER_M2
) -> LinkReport:
    """What linking would do now, without writing."""
    decisions = _decisions(session)
    return LinkReport(
        [analyse_edge(session, e, decisions, sliver_m2) for e in edges(session, registry)],
        sliver_m2,
    )


def _write(session: Session, edge: Edge, changes: list[tuple[int, int | None]]) -> None:
    session.execute(
        text(
            f"UPDATE {edge.table} t SET {edge.column} = v.parent"
            + (", updated_at = now()" if edge.kind == "area" else "")
            + " FROM unnest(CAST(:ids AS bigint[]), CAST(:parents AS bigint[]))"
            " AS v(id, parent) WHERE t.id = v.id"
        ),
        {"ids": [c[0] for c in changes], "parents": [c[1] for c in changes]},
    )


def link(
    session: Session, registry: LayerRegistry, sliver_m2: float = DEFAULT_SLIVER_M2
) -> LinkReport:
    """Links every child to its parent (top of the hierarchy first, so that lower edges see
    the new links); the caller commits."""
    decisions = _decisions(session)
    report = LinkReport(sliver_m2=sliver_m2)
    found = edges(session, registry)
    # Fresh statistics, seeing this transaction's own rows: right after a bulk import the
    # planner would otherwise take 200,000 new grids for an empty table.
    for table in dict.fromkeys(["admin_areas", "places", *(e.table for e in found)]):
        session.execute(text(f"ANALYZE {table}"))
    for edge in found:
        report.edges.append(analyse_edge(session, edge, decisions, sliver_m2, write=True))
    if report.changed:
        session.flush()
    return report


def _exists(session: Session, code: str) -> bool:
    return bool(
        session.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM admin_areas WHERE code = :c)"
                " OR EXISTS (SELECT 1 FROM places WHERE code = :c)"
            ),
            {"c": code},
        ).scalar_one()
    )


@dataclass
class Decided:
    accepted: list[Link] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (code, why)


def decide(
    session: Session,
    registry: LayerRegistry,
    accept: str,
    only: list[str] | None = None,
    actor: str = "cli",
    note: str | None = None,
    sliver_m2: float = DEFAULT_SLIVER_M2,
) -> Decided:
    """Records `accept` ("code" or "geometry") for the disagreements (all, or those whose
    child code is in `only`); `link` then applies them. The caller commits."""
    if accept not in ("code", "geometry"):
        raise ValueError(accept)
    report = analyse(session, registry, sliver_m2)
    out = Decided()
    wanted = list(dict.fromkeys(only or []))
    if wanted:
        candidates = []
        for code in wanted:
            found = [link for link in report.find(code) if link.disagrees]
            if found:
                candidates += found
            elif _exists(session, code):
                out.refused.append((code, "编码与位置一致，无需确认"))
            else:
                out.refused.append((code, "没有这个编码的区划或要素"))
    else:
        candidates = [link for e in report.edges for link in e.disagreements]
    for link in candidates:
        parent = link.by_code if accept == "code" else link.by_geometry
        if parent is None:
            why = (
                f"编码前缀 {link.claimed or '（无）'} 无对应上级"
                if accept == "code"
                else "不在任何上级范围内"
            )
            out.refused.append(
                (link.code, f"无法{'按编码' if accept == 'code' else '按位置'}归属：{why}")
            )
            continue
        session.add(
            AreaLinkDecision(
                kind=link.edge.kind,
                child_code=link.code,
                accept=accept,
                parent_code=parent.code,
                actor=actor,
                note=note,
            )
        )
        out.accepted.append(link)
    session.flush()
    return out
