"""Every role × every endpoint family × inside/outside scope, with the status each cell must get.

The accounts and data are the two-street world of conftest.build_world: every account except
admin is bound to street S1 (the leader to leader L1 as well); "outside" means street S2.

Adding your endpoints: append `Case`s to CASES. `path` may name world objects in braces:
issues {I1}…{I4} (I1 in S1, I2/I3 in S2, I4 in S2 on a road leader L1 answers for), places
{G1} {G2} {R1} {R12}, areas by code. `expect` maps role → status; roles not listed get
`default`. Anonymous callers get 401 on /api and a redirect (302) to /login on pages unless
`expect` says otherwise. Out-of-scope ids must answer 404, exactly like unknown ids.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from geoservice.accounts.accounts import issue_token
from geoservice.models import User
from tests.world import bearer, sign_in

ROLES = ("anonymous", "admin", "planner", "leader", "inspector", "viewer", "integration")
NOT_ADMIN = {r: 403 for r in ROLES if r not in ("anonymous", "admin")}
ADMIN_ONLY_OUTSIDE = {r: 404 for r in ROLES if r not in ("anonymous", "admin")}
NO_ASSIGNMENTS = {"inspector": 403, "integration": 403}
OUTSIDE_ASSIGNMENTS = {"planner": 404, "leader": 404, "viewer": 404, **NO_ASSIGNMENTS}
COUNTY_ONLY = {r: 403 for r in ROLES if r not in ("anonymous", "admin")}
NO_WRITE = {r: 403 for r in ("leader", "inspector", "viewer", "integration")}
FIELD_PLANNERS = {"leader": 403, "inspector": 403, "viewer": 403, "integration": 403}
# patrols.visit: the leader (L1) has tasks; admin and planner may visit but answer for nothing.
FIELD_VISITORS = {"admin": 404, "planner": 404, "inspector": 403, "viewer": 403,
                  "integration": 403}  # fmt: skip
FIELD_PAGE = {"inspector": 403, "viewer": 403, "integration": 403}
EVIDENCE_READERS = {"leader": 403, "viewer": 403, "integration": 403}


@dataclass(frozen=True)
class Case:
    family: str  # the permission (or "signed-in") the endpoint needs
    method: str
    path: str
    where: str = "-"  # "inside" / "outside" the accounts' scope, "-" when not scoped
    expect: Mapping[str, int] = field(default_factory=dict)
    default: int = 200
    json: Any = None
    via: str = "token"  # "token": Authorization: Bearer; "session": signed-in browser

    def status_for(self, role: str) -> int:
        if role in self.expect:
            return self.expect[role]
        if role == "anonymous":
            return 401 if self.path.startswith("/api") else 302
        return self.default


CASES = [
    Case("signed-in", "GET", "/api"),
    Case("signed-in", "GET", "/api/me"),
    Case("signed-in", "GET", "/", via="session"),
    Case("signed-in", "GET", "/account/password", via="session", expect={"integration": 403}),
    Case("layers.read", "GET", "/api/collections"),
    Case("layers.read", "GET", "/api/collections/grids"),
    Case("layers.read", "GET", "/api/areas"),
    Case("layers.read", "GET", "/api/areas/320999001001", "inside"),
    Case("layers.read", "GET", "/api/areas/320999002001", "outside", ADMIN_ONLY_OUTSIDE),
    Case("layers.read", "GET", "/api/areas/320999002", "outside", ADMIN_ONLY_OUTSIDE),
    Case("layers.read", "GET", "/api/service-area"),
    # Admin areas are scope boundaries: only whole-deployment holders of areas.write import
    # them (the admin gets past the check and is told the form lacks `level`).
    Case("areas.write", "POST", "/api/areas/import", expect={"admin": 400, **COUNTY_ONLY}),
    Case("users.admin", "GET", "/api/users", expect=NOT_ADMIN),
    Case(
        "users.admin",
        "POST",
        "/api/users",
        expect={"admin": 201, **NOT_ADMIN},
        json={"username": "made_by_matrix", "role": "viewer", "area": "320999001"},
    ),
    Case("users.admin", "GET", "/admin/users", via="session", expect=NOT_ADMIN),
    Case("audit.read", "GET", "/api/audit", expect=NOT_ADMIN),
    Case("audit.read", "GET", "/admin/audit", via="session", expect=NOT_ADMIN),
    # 包保 (geoservice/api/responsibility.py, web/responsibility.py). The world's integration
    # token has no assignments.* scope.
    Case("assignments.read", "GET", "/api/units", expect=NO_ASSIGNMENTS),
    Case("assignments.read", "GET", "/api/leaders", expect=NO_ASSIGNMENTS),
    Case("assignments.read", "GET", "/api/leaders/{L1}", "inside", NO_ASSIGNMENTS),
    Case("assignments.read", "GET", "/api/leaders/{L1}/features", "inside", NO_ASSIGNMENTS),
    Case("assignments.read", "GET", "/api/leaders/{L2}", "outside", OUTSIDE_ASSIGNMENTS),
    Case("assignments.read", "GET", "/api/leaders/{L2}/features", "outside", OUTSIDE_ASSIGNMENTS),
    Case("assignments.read", "GET", "/api/responsible?place_id={G1}", "inside", NO_ASSIGNMENTS),
    Case(
        "assignments.read", "GET", "/api/responsible?place_id={G2}", "outside", OUTSIDE_ASSIGNMENTS
    ),
    Case(
        "assignments.read", "GET", "/api/assignments?place_id={G2}", "outside", OUTSIDE_ASSIGNMENTS
    ),
    Case("assignments.read", "GET", "/api/roster/template.xlsx", expect=NO_ASSIGNMENTS),
    # Whole-county views: only accounts bound to no area (here: admin).
    Case("assignments.read", "GET", "/api/coverage", expect=COUNTY_ONLY),
    Case("assignments.read", "GET", "/api/roster.xlsx", expect=COUNTY_ONLY),
    Case(
        "assignments.write",
        "POST",
        "/api/units",
        expect={"admin": 201, "planner": 201, **{r: 403 for r in ROLES[3:]}},
        json={"name": "矩阵测试单位"},
    ),
    # Writes check the same scope as reads (issue 13 §4): a street's planner changes no leader
    # of another street.
    Case(
        "assignments.write",
        "PATCH",
        "/api/leaders/{L1}",
        "inside",
        {"admin": 200, "planner": 200, **NO_WRITE},
        json={"title": "矩阵测试"},
    ),
    Case(
        "assignments.write",
        "PATCH",
        "/api/leaders/{L2}",
        "outside",
        {"admin": 200, "planner": 404, **NO_WRITE},
        json={"title": "矩阵测试"},
    ),
    Case(
        "assignments.write",
        "POST",
        "/api/leaders/{L2}/deactivate",
        "outside",
        {"admin": 200, "planner": 404, **NO_WRITE},
    ),
    Case("assignments.read", "GET", "/leaders", via="session", expect=NO_ASSIGNMENTS),
    Case("assignments.read", "GET", "/leaders/{L2}", "outside", OUTSIDE_ASSIGNMENTS, via="session"),
    Case("assignments.read", "GET", "/my", via="session", expect=NO_ASSIGNMENTS),
    Case("assignments.read", "GET", "/coverage", via="session", expect=COUNTY_ONLY),
    # Maps (geoservice/web/maps.py, geoservice/api/maps.py). The big screen shows county-wide
    # figures: only for accounts bound to no area that read rankings (here: admin).
    Case("issues.read", "GET", "/map", via="session"),
    Case("issues.read", "GET", "/map?mine=1&category=环境卫生", via="session"),
    Case("rankings.read", "GET", "/screen", via="session", expect=COUNTY_ONLY),
    Case("issues.read", "GET", "/api/map/summary"),
    Case("issues.read", "GET", "/api/map/counts?of=community&measure=overdue"),
    Case("issues.read", "GET", "/api/map/heat?bbox=120,33,120.2,33.1&z=12"),
    Case("rankings.read", "GET", "/api/map/screen", expect=COUNTY_ONLY),
    Case("layers.read", "GET", "/api/map/areas/community/tiles/8/213/103.pbf"),
    Case("layers.read", "GET", "/api/map/labels/grids/tiles/8/213/103.pbf"),
    Case("layers.read", "GET", "/map/popup/place/{G1}", "inside", via="session"),
    Case(
        "layers.read", "GET", "/map/popup/place/{G2}", "outside", ADMIN_ONLY_OUTSIDE, via="session"
    ),
    Case(
        "issues.read", "GET", "/map/popup/issue/{I1}", "inside", {"inspector": 404}, via="session"
    ),
    Case(
        "issues.read", "GET", "/map/popup/issue/{I2}", "outside", ADMIN_ONLY_OUTSIDE, via="session"
    ),
    # Who answers for a spot (geoservice/api/attribution.py): issues.report or
    # assignments.read, so every role. Reporting is not limited to the account's area, and
    # neither is asking what a report would attribute; an account that may not report (the
    # viewer) only asks about spots whose issues it would see.
    Case("issues.report|assignments.read", "GET", "/api/attribution?lon=120.05&lat=33.05"),
    Case(
        "issues.report|assignments.read",
        "GET",
        "/api/attribution?lon=120.15&lat=33.05",
        "outside",
        {"viewer": 404},
    ),
    # Field work (geoservice/api/fieldwork.py, web/field.py). Schedules are deployment-wide:
    # writing them needs an account bound to no area (here: admin). Tasks are a leader's own.
    Case("patrols.plan", "GET", "/api/fieldwork/schedules", expect=FIELD_PLANNERS),
    Case(
        "patrols.plan",
        "POST",
        "/api/fieldwork/schedules",
        expect={"admin": 201, **COUNTY_ONLY},
        json={"layer": "road", "role": "道路长", "period": "week", "times": 2},
    ),
    Case("patrols.plan", "GET", "/api/fieldwork/tasks/overdue", expect=FIELD_PLANNERS),
    Case("patrols.plan", "GET", "/api/fieldwork/unvisited", expect=FIELD_PLANNERS),
    Case("patrols.plan", "GET", "/field/overview", via="session", expect=FIELD_PLANNERS),
    Case("patrols.visit", "GET", "/api/fieldwork/tasks/mine", expect=FIELD_VISITORS),
    Case("patrols.visit", "GET", "/field/", via="session", expect=FIELD_PAGE),
    Case(
        "rankings.read",
        "GET",
        "/api/fieldwork/rates",
        expect={"inspector": 403, "integration": 403},
    ),
    Case("evidence.read", "GET", "/api/fieldwork/evidence/suspicious", expect=EVIDENCE_READERS),
    Case("evidence.read", "GET", "/field/evidence", via="session", expect=EVIDENCE_READERS),
    Case("layers.read", "GET", "/api/fieldwork/inspections"),
]


def _id(case: Case) -> str:
    return f"{case.family}:{case.method} {case.path}:{case.where}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_access(world, world_client, case: Case, role: str):
    client = world_client
    headers = {}
    if role != "anonymous":
        # Integration accounts cannot sign in: their pages are reached with the token.
        if case.via == "session" and role != "integration":
            assert sign_in(client, role).status_code == 302
        else:
            headers = bearer(world["tokens"][role])
    names = {**world["issues"], **world["places"], **world["leaders"]}
    response = client.open(
        case.path.format(**names), method=case.method, headers=headers, json=case.json
    )
    expected = case.status_for(role)
    assert response.status_code == expected, response.get_data(as_text=True)[:300]
    if expected == 302:
        assert response.headers["Location"].startswith("/login")
    elif expected >= 400 and case.path.startswith("/api"):
        assert response.is_json and response.get_json()["error"]


def test_out_of_scope_looks_exactly_like_unknown(world, world_client):
    """A leader of S1 guessing S2's area codes learns nothing from the answer."""
    headers = bearer(world["tokens"]["leader"])
    hidden = world_client.get("/api/areas/320999002001", headers=headers)
    unknown = world_client.get("/api/areas/320999009001", headers=headers)
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.get_json()["error"].replace("320999002001", "X") == unknown.get_json()[
        "error"
    ].replace("320999009001", "X")
    assert set(hidden.get_json()) == set(unknown.get_json())


def test_listing_shows_only_areas_in_scope(world, world_client):
    body = world_client.get("/api/areas", headers=bearer(world["tokens"]["leader"])).get_json()
    assert [a["code"] for a in body["areas"]] == ["320999001", "320999001001"]
    body = world_client.get("/api/areas", headers=bearer(world["tokens"]["admin"])).get_json()
    assert len(body["areas"]) == 5


def test_index_counts_only_what_the_account_sees(world, world_client):
    assert sign_in(world_client, "leader2").status_code == 302
    html = world_client.get("/").get_data(as_text=True)
    # leader2 (S2): G2 and R12; issues I2, I3, I4; leaders L1 and L2; areas S2 and C2.
    assert "行政区划 2 个 · 包保领导 2 人 · 问题 3 件" in html


STREET_FILE = (
    '{"type":"FeatureCollection","features":[{"type":"Feature","properties":'
    '{"code":"320999001","name":"西城街道"},"geometry":{"type":"Polygon","coordinates":'
    "[[[120.0,33.0],[120.05,33.0],[120.05,33.1],[120.0,33.1],[120.0,33.0]]]}}]}"
)


@pytest.mark.parametrize(
    ("scopes", "status"),
    [
        (["layers.write:roads"], 403),  # issue 13 §3: this token redrew a street (201)
        (["layers.write"], 403),  # editing layers is not redrawing admin areas
        (["areas.write:roads"], 403),  # a collection-scoped grant never covers areas
        (["areas.write"], 201),
    ],
)
def test_only_an_unscoped_areas_write_grant_redraws_admin_areas(
    world, world_client, scopes, status
):
    session = world["session"]
    admin = session.get(User, world["users"]["admin"])
    token = issue_token(session, admin, label="matrix", scopes=scopes)
    session.commit()
    response = world_client.post(
        "/api/areas/import",
        headers=bearer(token),
        content_type="multipart/form-data",
        data={
            "file": (io.BytesIO(STREET_FILE.encode()), "street.geojson"),
            "level": "street",
            "replace": "true",
        },
    )
    assert response.status_code == status, response.get_json()
    if status == 403:
        assert response.get_json()["detail"]["action"] == "areas.write"
