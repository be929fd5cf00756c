"""Which data an account sees (市镇村分级负责): SQL filters to AND into any query.

Rules (documented in docs/security.md; tests/test_scope.py holds them to it):

- `admin` sees everything.
- An account bound to an admin area (`users.area_id`, any level: city, district, county,
  street, community) sees the data inside that area:
  * a polygon feature belongs to the area that covers its interior point
    (`ST_PointOnSurface`), so features that tile along area boundaries belong to exactly one
    area and sliver overlaps of real data do not leak a feature to the neighbour;
  * a line or point feature belongs to every area its interior enters (a road crossing
    two streets is seen by both; merely touching the boundary does not count);
  * an issue belongs to every area that covers its point (boundary included).
- A `leader` account is also bound to a leader record (`users.leader_id`) and sees
  *its own and its subordinates'* data: the places the leader currently answers for
  (active assignments) and the issues attributed to the leader or located at those places,
  **plus** everything inside the account's admin area. "Subordinates" are thus defined by
  the area: bind a street party secretary to the street and every community leader's places
  and issues in that street are visible. A leader account with neither sees nothing.
- An `inspector` sees places like any area-bound account, but only the issues they reported.
- Any other account without an area (planner, viewer, integration) sees the whole
  deployment.

Usage, Core (`Issue`, `Grid` are mapped classes or tables):

    stmt = select(Issue).where(scope.issue_filter(account))
    stmt = select(Grid.id).where(scope.place_filter(account, Grid.geom, Grid.id))
    stmt = select(spec.model).where(scope.layer_filter(account, spec))   # any registered layer

Usage, text SQL (the fragment uses named bound parameters prefixed `scope_`):

    where, params = scope.issue_sql(account, alias="i")
    session.execute(text(f"SELECT … FROM issues i WHERE {where} AND …"), {**params, …})

Fetching one row by id for an account (None when unknown *or* out of scope, so that the
caller answers 404 for both and a guessed id reveals nothing):

    issue = scope.visible_issue(session, account, issue_id)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    any_,
    bindparam,
    case,
    column,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    table,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from geoservice.models import AdminArea, Assignment, Issue, Leader, Place, User

_DIALECT = postgresql.psycopg2.dialect(paramstyle="named")
# The units a leader supervises (the notifications' table, named here without its package).
_UNIT_CONTACTS = table("notify_unit_contacts", column("unit_id"), column("supervisor_leader_id"))


@dataclass(frozen=True)
class Scope:
    """What an account is bound to. `everything`: no restriction at all."""

    everything: bool = False
    area_id: int | None = None
    leader_id: int | None = None
    own_reports_of: int | None = None  # issues: only those reported by this user id

    @property
    def nothing(self) -> bool:
        return not self.everything and self.area_id is None and self.leader_id is None


NOTHING = Scope()


def for_account(account: User | None) -> Scope:
    if account is None or not account.active:
        return NOTHING
    if account.role == "admin":
        return Scope(everything=True)
    if account.role == "leader":
        return Scope(area_id=account.area_id, leader_id=account.leader_id)
    own = account.id if account.role == "inspector" else None
    if account.area_id is None:
        return Scope(everything=True, own_reports_of=own)
    return Scope(area_id=account.area_id, own_reports_of=own)


def _scope(account: User | Scope | None) -> Scope:
    return account if isinstance(account, Scope) else for_account(account)


def _area_geom(area_id: int) -> Any:
    return (
        select(AdminArea.geom)
        .where(AdminArea.id == bindparam("scope_area_id", area_id))
        .scalar_subquery()
    )


def _leader_places(leader_id: int) -> Any:
    """Ids of the places the leader answers for now (active assignments)."""
    now = func.now()
    return select(Assignment.place_id).where(
        Assignment.leader_id == bindparam("scope_leader_id", leader_id),
        Assignment.valid_from <= now,
        or_(Assignment.valid_to.is_(None), Assignment.valid_to > now),
    )


def _among_leader_places(column: Any, leader_id: int) -> ColumnElement[bool]:
    """`column = ANY(ARRAY(<the leader's places>))`, not `IN (<subquery>)`: the array is
    computed once (an InitPlan) and serves as an index condition, so a leader's few issues
    come from a BitmapOr of indexes. With `IN`, the planner guessed thousands of matches and
    walked the whole id index for an items page (0.8 s for an empty viewport at 1M issues,
    4.7 ms now)."""
    return column == any_(func.array(_leader_places(leader_id).scalar_subquery()))


def geometry_in_area(geom: Any, area_id: int) -> ColumnElement[bool]:
    """Does a place geometry belong to the area (rules in the module docstring)?"""
    area = _area_geom(area_id)
    rule = case(
        (func.ST_Dimension(geom) == 2, func.ST_Covers(area, func.ST_PointOnSurface(geom))),
        else_=and_(func.ST_Intersects(area, geom), ~func.ST_Touches(area, geom)),
    )
    # `&&` first, so the GiST index on the geometry column does the coarse work.
    return and_(geom.op("&&")(area), rule)


def place_filter(account: User | Scope | None, geom: Any, place_id: Any = None) -> ColumnElement:
    """Filter on a layer table: `geom` its geometry column, `place_id` its id column."""
    s = _scope(account)
    if s.everything:
        return true()
    parts = []
    if s.area_id is not None:
        parts.append(geometry_in_area(geom, s.area_id))
    if s.leader_id is not None and place_id is not None:
        parts.append(_among_leader_places(place_id, s.leader_id))
    return or_(*parts) if parts else false()


def layer_filter(account: User | Scope | None, spec: Any, table: Any = None) -> ColumnElement:
    """`place_filter` on a registered layer's table (or an alias of it): the usual case."""
    t = table if table is not None else spec.model.__table__
    return place_filter(account, t.c.geom, t.c.id)


def issue_filter(account: User | Scope | None, issues: Any = None) -> ColumnElement:
    """Filter on the issues table (or an alias of it, e.g. `Issue.__table__.alias("i")`)."""
    s = _scope(account)
    c = (issues if issues is not None else Issue.__table__).c
    if s.own_reports_of is not None:
        return c.reported_by_id == bindparam("scope_user_id", s.own_reports_of)
    if s.everything:
        return true()
    parts = []
    if s.area_id is not None:
        parts.append(func.ST_Covers(_area_geom(s.area_id), c.geom))
    if s.leader_id is not None:
        leader = bindparam("scope_leader_id", s.leader_id)
        # The leader's unit answers for its issues with them (workflow.is_responsible: any
        # leader of the unit acts; the unit's contact and head are sent its messages).
        own_unit = select(Leader.unit_id).where(Leader.id == leader).scalar_subquery()
        # … and the 联点/分管领导 of a unit, to whom its escalations go (notify_unit_contacts).
        supervised = select(_UNIT_CONTACTS.c.unit_id).where(
            _UNIT_CONTACTS.c.supervisor_leader_id == leader
        )
        parts.append(
            or_(
                c.leader_id == leader,
                c.unit_id == own_unit,
                c.unit_id.in_(supervised),
                _among_leader_places(c.primary_place_id, s.leader_id),
                _among_leader_places(c.grid_id, s.leader_id),
            )
        )
    return or_(*parts) if parts else false()


def place_ref_filter(account: User | Scope | None, registry: Any, place_id: Any) -> ColumnElement:
    """Filter on a column referencing `places.id` (assignments, issues' places …)."""
    s = _scope(account)
    if s.everything:
        return true()
    if s.nothing:
        return false()
    parts = []
    for spec in registry:
        table = spec.model.__table__
        parts.append(
            exists(
                select(1)
                .select_from(table)
                .where(table.c.id == place_id, place_filter(s, table.c.geom, table.c.id))
            )
        )
    return or_(*parts)


def leader_filter(account: User | Scope | None, registry: Any, leader_id: Any) -> ColumnElement:
    """Filter on a column referencing `leaders.id`: the account's own leader record and the
    leaders who answer now for places the account sees."""
    s = _scope(account)
    if s.everything:
        return true()
    if s.nothing:
        return false()
    now = func.now()
    a = Assignment.__table__.alias("scope_a")
    answering = exists(
        select(1)
        .select_from(a)
        .where(
            a.c.leader_id == leader_id,
            a.c.valid_from <= now,
            or_(a.c.valid_to.is_(None), a.c.valid_to > now),
            place_ref_filter(s, registry, a.c.place_id),
        )
    )
    if s.leader_id is not None:
        return or_(leader_id == bindparam("scope_leader_id", s.leader_id), answering)
    return answering


def area_filter(account: User | Scope | None, area_id: Any) -> ColumnElement:
    """Filter on a column referencing `admin_areas.id`: the bound area and everything
    below it (communities of a street …)."""
    s = _scope(account)
    if s.everything:
        return true()
    if s.area_id is None:
        return false()
    areas = AdminArea.__table__
    tree = (
        select(areas.c.id)
        .where(areas.c.id == bindparam("scope_area_id", s.area_id))
        .cte("scope_area_tree", recursive=True)
    )
    child = areas.alias("scope_child")
    tree = tree.union_all(select(child.c.id).where(child.c.parent_id == tree.c.id))
    return area_id.in_(select(tree.c.id))


# --- text SQL ---------------------------------------------------------------------------


def to_sql(clause: ColumnElement) -> tuple[str, dict[str, Any]]:
    """Compiles a filter to an SQL fragment with named (`:name`) bound parameters, in
    parentheses: a scope is often a disjunction, and `x AND {scope}` must not read as
    `(x AND a) OR b`."""
    compiled = clause.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
    return f"({compiled})", dict(compiled.params)


def place_sql(
    account: User | Scope | None, geom: str = "l.geom", place_id: str = "l.id"
) -> tuple[str, dict[str, Any]]:
    """`place_filter` for text SQL; `geom`/`place_id` are column expressions of the query
    (trusted identifiers written by the programmer, never user input)."""
    where, params = _place_sql(_scope(account), geom, place_id)
    return where, dict(params)


def issue_sql(account: User | Scope | None, alias: str = "i") -> tuple[str, dict[str, Any]]:
    """`issue_filter` for text SQL on `issues <alias>`."""
    where, params = _issue_sql(_scope(account), alias)
    return where, dict(params)


# The text of a scope depends on the scope (ids, as bound parameters) and the names only:
# compiled once per process (compiling it was a third of an area-bound account's items page).
@lru_cache(maxsize=1024)
def _place_sql(s: Scope, geom: str, place_id: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    where, params = to_sql(place_filter(s, literal_column(geom), literal_column(place_id)))
    return where, tuple(params.items())


@lru_cache(maxsize=1024)
def _issue_sql(s: Scope, alias: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    where, params = to_sql(issue_filter(s, Issue.__table__.alias(alias)))
    return where, tuple(params.items())


# --- one row by id (None for unknown and out of scope alike) ----------------------------


def visible_issue(session: Session, account: User | None, issue_id: int) -> Issue | None:
    return session.scalar(select(Issue).where(Issue.id == issue_id, issue_filter(account)))


def visible_place(
    session: Session, account: User | None, registry: Any, place_id: int
) -> Place | None:
    return session.scalar(
        select(Place).where(
            Place.id == place_id, place_ref_filter(account, registry, Place.__table__.c.id)
        )
    )


def visible_area(session: Session, account: User | None, code: str) -> AdminArea | None:
    return session.scalar(
        select(AdminArea).where(AdminArea.code == code, area_filter(account, AdminArea.id))
    )


def describe(session: Session, account: User | None) -> dict[str, Any]:
    """A plain description of the account's scope (for /api/me and the pages)."""
    s = for_account(account)
    out: dict[str, Any] = {"everything": s.everything}
    if s.area_id is not None:
        area = session.get(AdminArea, s.area_id)
        out["area"] = {"code": area.code, "name": area.name, "level": area.level}
    if s.leader_id is not None:
        out["leader_id"] = s.leader_id
    if s.own_reports_of is not None:
        out["issues"] = "own_reports"
    if s.nothing:
        out["nothing"] = True
    return out
