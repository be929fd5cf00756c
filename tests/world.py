"""The two-street world for access tests, and sign-in helpers (used through conftest)."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

PASSWORD = "Secret-pass-1"


def box(x0: float, y0: float, x1: float, y1: float):
    from geoalchemy2.shape import from_shape
    from shapely.geometry import MultiPolygon
    from shapely.geometry import box as shapely_box

    return from_shape(MultiPolygon([shapely_box(x0, y0, x1, y1)]), srid=4326)


def build_world(session: Session, registry) -> dict:
    """A county of two streets, S1 (west) and S2 (east), each one community with one grid.

    - road R1 lies in S1; road R12 crosses from S1 into S2;
    - leaders: L1 (S1 street secretary: grid G1 and the crossing road R12), L3 (a community
      leader under L1: road R1), L2 (S2: grid G2);
    - issues: I1 in S1 on R1 (leader L3), I2 and I3 in S2 (leader L2, I3 reported by the
      inspector), I4 in S2 on R12 (leader L1);
    - accounts (password PASSWORD) bound to S1 unless said otherwise: admin (unbound),
      planner, leader (L1), inspector, viewer, integration (token only, scoped), plus
      viewer_all (unbound), leader_only (L1, no area) and leader2 (L2, S2).

    Returns ids and clear API tokens by name: world["issues"]["I1"], world["tokens"]["viewer"] …
    """
    from datetime import UTC, datetime, timedelta

    from geoalchemy2.shape import from_shape
    from shapely.geometry import MultiLineString, Point

    from geoservice.accounts.accounts import create_user, issue_token
    from geoservice.models import AdminArea, Assignment, Issue, Leader

    def area(level, code, name, geom, parent=None):
        row = AdminArea(level=level, code=code, name=name, geom=geom, parent_id=parent)
        session.add(row)
        session.flush()
        return row.id

    county = area("county", "320999", "演示县", box(120.0, 33.0, 120.2, 33.1))
    s1 = area("street", "320999001", "西城街道", box(120.0, 33.0, 120.1, 33.1), county)
    s2 = area("street", "320999002", "东城街道", box(120.1, 33.0, 120.2, 33.1), county)
    c1 = area("community", "320999001001", "西一社区", box(120.0, 33.0, 120.1, 33.1), s1)
    c2 = area("community", "320999002001", "东一社区", box(120.1, 33.0, 120.2, 33.1), s2)

    grid, road = registry.get("grid").model, registry.get("road").model
    places = {
        "G1": grid(
            code="320999001001001",
            name="西一网格",
            geom=box(120.0, 33.0, 120.1, 33.1),
            community_id=c1,
        ),
        "G2": grid(
            code="320999002001001",
            name="东一网格",
            geom=box(120.1, 33.0, 120.2, 33.1),
            community_id=c2,
        ),
        "R1": road(
            code="R1",
            name="人民路",
            grade="主干道",
            geom=from_shape(MultiLineString([[(120.02, 33.05), (120.08, 33.05)]]), srid=4326),
        ),
        "R12": road(
            code="R12",
            name="建设路",
            grade="次干道",
            geom=from_shape(MultiLineString([[(120.05, 33.02), (120.15, 33.02)]]), srid=4326),
        ),
    }
    session.add_all(places.values())
    session.flush()
    leaders = {
        key: Leader(name=name, title=title, level=level)
        for key, name, title, level in (
            ("L1", "张明", "西城街道党工委书记", "镇街"),
            ("L2", "李强", "东城街道党工委书记", "镇街"),
            ("L3", "王芳", "西一社区主任", "村社区"),
        )
    }
    session.add_all(leaders.values())
    session.flush()
    since = datetime(2026, 1, 1, tzinfo=UTC)
    for leader, place in (("L1", "G1"), ("L1", "R12"), ("L3", "R1"), ("L2", "G2")):
        session.add(
            Assignment(
                leader_id=leaders[leader].id,
                place_id=places[place].id,
                role="包保责任人",
                valid_from=since,
            )
        )
    session.flush()

    names = (
        "admin",
        "planner",
        "leader",
        "inspector",
        "viewer",
        "integration",
        "viewer_all",
        "leader_only",
        "leader2",
    )
    binding = {
        "admin": ("admin", None, None),
        "planner": ("planner", "320999001", None),
        "leader": ("leader", "320999001", "L1"),
        "inspector": ("inspector", "320999001", None),
        "viewer": ("viewer", "320999001", None),
        "integration": ("integration", "320999001", None),
        "viewer_all": ("viewer", None, None),
        "leader_only": ("leader", None, "L1"),
        "leader2": ("leader", "320999002", "L2"),
    }
    users, tokens = {}, {}
    for name in names:
        role, area_code, leader = binding[name]
        user = create_user(
            session,
            name,
            role,
            None if role == "integration" else PASSWORD,
            area_code,
            leaders[leader].id if leader else None,
            check_strength=False,
        )
        users[name] = user.id
        scopes = ["layers.read", "issues.read", "issues.report"] if role == "integration" else None
        tokens[name] = issue_token(session, user, label="test", scopes=scopes)

    reported = datetime(2026, 11, 1, tzinfo=UTC)
    issue_rows = {
        "I1": (120.05, 33.05, "R1", "G1", "L3", None),
        "I2": (120.15, 33.05, "G2", "G2", "L2", None),
        "I3": (120.15, 33.06, "G2", "G2", "L2", "inspector"),
        "I4": (120.12, 33.02, "R12", "G2", "L1", None),
    }
    issues = {}
    for key, (x, y, place, grid_key, leader, reporter) in issue_rows.items():
        row = Issue(
            geom=from_shape(Point(x, y), srid=4326),
            category="环境卫生",
            source="自查",
            description=f"测试问题 {key}",
            status="dispatched",
            reported_at=reported,
            deadline=reported + timedelta(days=1),
            primary_place_id=places[place].id,
            grid_id=places[grid_key].id,
            leader_id=leaders[leader].id,
            reported_by_id=users[reporter] if reporter else None,
        )
        session.add(row)
        session.flush()
        issues[key] = row.id
    return {
        "areas": {"county": county, "S1": s1, "S2": s2, "C1": c1, "C2": c2},
        "places": {k: p.id for k, p in places.items()},
        "leaders": {k: v.id for k, v in leaders.items()},
        "issues": issues,
        "users": users,
        "tokens": tokens,
    }


def csrf_token_of(client, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page's form."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, username: str, password: str = PASSWORD, **kwargs):
    """Posts the sign-in form (with its CSRF token); returns the response."""
    token = csrf_token_of(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        **kwargs,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
