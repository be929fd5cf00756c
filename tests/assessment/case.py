"""A hand-built county for the assessment tests, with figures worked out by hand.

Two streets, one community each. Kinds: 学校周边 `school` (attribute 学段, a required choice)
and 公交站台 `bus`. Standards (version 「测试体系」):

    A1 school 10 分 环境卫生      A2 school 5 分 乱贴乱画
    B1 bus    10 分 设施损坏      N1 school+bus 5 分 环境卫生 负面清单

So a school answers for 20 points (A1, A2, N1), a bus stop for 15 (B1, N1).

Sites, 点长 (unit) and the results of round 「第一轮」:

    street 东街: school1 (L1 张一, 县教育局): A1 合格, A2 不合格, N1 合格   → 15/20 = 75
                 bus1    (L2 李二, 县交通局): B1 合格, N1 合格             → 15/15 = 100 达标
    street 西街: school2 (L1 张一):           A1 合格, A2 合格, N1 不适用   → 15/15 = 100 达标
                 bus2    (L3 王三, 县交通局): B1 合格, N1 不合格 (负面清单) → 10/15 = 66.67

Hand-computed: 东街 87.5 (达标率 50 %), 西街 83.33 (50 %); 张一 87.5, 李二 100, 王三 66.67;
县教育局 87.5, 县交通局 83.33; county 85.42, 达标率 50 %, 2 failures, 1 negative-list hit.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image
from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.assessment import kinds, rounds, sites, standards
from geoservice.issues.photos import PhotoStore, Upload, prepare
from geoservice.issues.workflow import IssueSettings
from geoservice.models import Leader, Unit, User
from geoservice.registry import LayerRegistry

NOW = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)
LON0, LAT0 = 120.26, 33.78
M = 1 / 100_000  # about a metre in degrees here (close enough for placing test sites)


def square(x0: float, y0: float, x1: float, y1: float) -> str:
    a, b, c, d = LON0 + x0 * M, LAT0 + y0 * M, LON0 + x1 * M, LAT0 + y1 * M
    return f"MULTIPOLYGON((({a} {b}, {c} {b}, {c} {d}, {a} {d}, {a} {b})))"


def area(session: Session, level: str, code: str, name: str, wkt: str, parent: int | None):
    return session.execute(
        text(
            "INSERT INTO admin_areas (level, code, name, parent_id, geom)"
            " VALUES (:l, :c, :n, :p, ST_GeomFromText(:w, 4326)) RETURNING id"
        ),
        {"l": level, "c": code, "n": name, "p": parent, "w": wkt},
    ).scalar_one()


def jpeg(colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(out, "JPEG")
    return out.getvalue()


def photo(settings: IssueSettings):
    return prepare(Upload(jpeg(), "fail.jpg", "image/jpeg"), settings.photo_limits, settings.tz)


def issue_settings(config, tmp: Path) -> IssueSettings:
    base = IssueSettings.from_config(config)
    from dataclasses import replace

    return replace(base, store=PhotoStore(tmp))


def build(session: Session, registry: LayerRegistry, settings: IssueSettings) -> dict:
    county = area(session, "county", "320900", "测试县", square(-1000, -1000, 3000, 1000), None)
    east = area(session, "street", "320900001", "东街", square(-1000, -1000, 1000, 1000), county)
    west = area(session, "street", "320900002", "西街", square(1000, -1000, 3000, 1000), county)
    area(session, "community", "320900001001", "东社区", square(-1000, -1000, 1000, 1000), east)
    area(session, "community", "320900002001", "西社区", square(1000, -1000, 3000, 1000), west)

    school = kinds.create_kind(
        session,
        {
            "code": "school",
            "name": "学校周边",
            "attributes": [
                {
                    "name": "stage",
                    "title": "学段",
                    "type": "choice",
                    "required": True,
                    "choices": ["小学", "初中"],
                },
            ],
            "claim_radius_m": 50,
            "precedence": 60,
        },
    )
    bus = kinds.create_kind(session, {"code": "bus", "name": "公交站台", "claim_radius_m": 20})

    def site(code, kind, x, y, **attrs):
        return sites.create_site(
            session,
            {"code": code, "name": code, "kind": kind, "lon": LON0 + x * M, "lat": LAT0 + y * M,
             "attributes": attrs},
        )  # fmt: skip

    s = {
        "school1": site("school1", "school", 0, 0, stage="小学"),
        "bus1": site("bus1", "bus", 500, 0),
        "school2": site("school2", "school", 2000, 0, stage="初中"),
        "bus2": site("bus2", "bus", 2500, 0),
    }
    units = {n: Unit(name=n) for n in ("县教育局", "县交通局")}
    session.add_all(units.values())
    session.flush()
    leaders = {
        "L1": Leader(name="张一", unit_id=units["县教育局"].id, level="县级"),
        "L2": Leader(name="李二", unit_id=units["县交通局"].id, level="县级"),
        "L3": Leader(name="王三", unit_id=units["县交通局"].id, level="县级"),
    }
    session.add_all(leaders.values())
    session.flush()
    for site_name, leader in (("school1", "L1"), ("bus1", "L2"), ("school2", "L1"),
                              ("bus2", "L3")):  # fmt: skip
        session.execute(
            text(
                "INSERT INTO assignments (leader_id, place_id, role, is_primary, valid_from)"
                " VALUES (:l, :p, '点长', true, :at)"
            ),
            {"l": leaders[leader].id, "p": s[site_name].id, "at": datetime(2026, 1, 1, tzinfo=UTC)},
        )
    version = standards.create_version(
        session,
        "测试体系",
        standards.rows_from_tree(
            [
                {
                    "code": "1",
                    "title": "公共环境",
                    "contents": [
                        {
                            "code": "1.1",
                            "title": "校园周边",
                            "standards": [
                                {
                                    "code": "A1",
                                    "text": "周边无垃圾",
                                    "score": 10,
                                    "kinds": ["school"],
                                    "category": "环境卫生",
                                },
                                {
                                    "code": "A2",
                                    "text": "无乱贴乱画",
                                    "score": 5,
                                    "kinds": ["学校周边"],
                                    "category": "乱贴乱画",
                                },
                            ],
                        },
                        {
                            "code": "1.2",
                            "title": "站台",
                            "standards": [
                                {
                                    "code": "B1",
                                    "text": "站牌完好",
                                    "score": 10,
                                    "kinds": ["bus"],
                                    "category": "设施损坏",
                                },
                            ],
                        },
                    ],
                },
                {
                    "code": "2",
                    "title": "负面清单",
                    "contents": [
                        {
                            "code": "2.1",
                            "title": "重大问题",
                            "standards": [
                                {
                                    "code": "N1",
                                    "text": "无大面积垃圾堆积",
                                    "score": 5,
                                    "kinds": ["school", "bus"],
                                    "category": "环境卫生",
                                    "negative_list": True,
                                },
                            ],
                        },
                    ],
                },
            ]
        ),
        list(settings.categories),
    )
    planner = User(username="planner_case", role="planner", display_name="督查一")
    inspector = User(username="inspector_case", role="inspector", display_name="测评员")
    session.add_all([planner, inspector])
    session.flush()
    found = rounds.create_round(
        session,
        {"name": "第一轮", "starts_on": "2026-11-09", "ends_on": "2026-11-12",
         "version_id": version.id, "inspector_id": inspector.id},
        planner,
    )  # fmt: skip
    std = {row["code"]: row["id"] for row in standards.version_rows(session, version.id)}
    return {
        "kinds": {"school": school, "bus": bus},
        "sites": s,
        "leaders": leaders,
        "units": units,
        "version": version,
        "standards": std,
        "round": found,
        "planner": planner,
        "inspector": inspector,
        "streets": {"东街": east, "西街": west},
    }


RESULTS = {
    "school1": [("A1", "合格"), ("A2", "不合格"), ("N1", "合格")],
    "bus1": [("B1", "合格"), ("N1", "合格")],
    "school2": [("A1", "合格"), ("A2", "合格"), ("N1", "不适用")],
    "bus2": [("B1", "合格"), ("N1", "不合格")],
}


def record_all(session: Session, registry, settings: IssueSettings, case: dict) -> None:
    for site_name, entries in RESULTS.items():
        site = case["sites"][site_name]
        lon, lat = rounds.site_anchor(session, site.id)
        rounds.submit_results(
            session,
            registry,
            settings,
            case["round"].id,
            site.id,
            [
                rounds.Entry(
                    case["standards"][code],
                    outcome,
                    "",
                    photo(settings) if outcome == "不合格" else None,
                )
                for code, outcome in entries
            ],
            case["inspector"],
            lon,
            lat,
            now=NOW,
        )


def recorded(app, session: Session, tmp: Path) -> dict:
    """The case built and every result of round 「第一轮」 recorded: what the score, page and
    export tests read (with the session, settings and registry)."""
    from geoservice.registry import layers

    settings = issue_settings(app.config, tmp)
    built = build(session, layers(app), settings)
    record_all(session, layers(app), settings, built)
    return {**built, "session": session, "settings": settings, "registry": layers(app)}
