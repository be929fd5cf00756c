"""The demo county's sites and mock evaluations: a dozen kinds, a few hundred sites with 点长,
a small standards tree written for this demo (not taken from any official manual), and two
past rounds whose failures became issues. Deterministic for the county's seed and `today`."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from geoalchemy2.shape import from_shape
from PIL import Image, ImageDraw
from shapely.geometry import Point
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from geoservice.assessment import kinds as kind_service
from geoservice.assessment import rounds, sites, standards
from geoservice.assessment.models import AssessmentResult, Site, Standard
from geoservice.config import DEFAULTS
from geoservice.issues.photos import PhotoStore, Upload, prepare
from geoservice.issues.workflow import IssueSettings
from geoservice.models import Assignment, Photo, User
from geoservice.registry import LayerRegistry

TZ = ZoneInfo("Asia/Shanghai")

# (code, name, geometry, colour, claim radius m, precedence, attributes)
KINDS: list[tuple[str, str, str, str, float, int, list[dict[str, Any]]]] = [
    ("crossing", "主要交通路口", "point", "#d84315", 40, 70, []),
    ("school", "学校周边", "point", "#6a1b9a", 100, 80, [
        {"name": "stage", "title": "学段", "type": "choice", "required": True,
         "choices": ["幼儿园", "小学", "初中", "高中"]}]),
    ("construction", "建筑工地", "polygon", "#795548", 30, 75, [
        {"name": "builder", "title": "施工单位", "type": "text", "required": True},
        {"name": "permit_date", "title": "施工许可日期", "type": "date"}]),
    ("bus_stop", "公交站台", "point", "#1565c0", 20, 65, []),
    ("hospital", "医院", "point", "#c62828", 80, 78, [
        {"name": "grade", "title": "等级", "type": "choice", "choices": ["一级", "二级", "三级"]}]),
    ("station", "车站", "point", "#283593", 120, 72, []),
    ("hotel", "宾馆酒店", "point", "#00838f", 30, 60, [
        {"name": "rooms", "title": "客房数", "type": "integer"}]),
    ("netcafe", "网吧", "point", "#37474f", 20, 62, []),
    ("park", "公园广场", "polygon", "#2e7d32", 20, 68, []),
    ("service_hall", "政务服务大厅", "point", "#ef6c00", 50, 66, []),
    ("scenic", "景区景点", "polygon", "#558b2f", 30, 64, []),
    ("toilet", "公厕", "point", "#8d6e63", 15, 58, [
        {"name": "level", "title": "类别", "type": "choice", "choices": ["一类", "二类", "三类"]}]),
]  # fmt: skip
WEIGHTS = [14, 8, 5, 16, 3, 2, 5, 4, 5, 2, 2, 10]
ALL = [k[0] for k in KINDS]

# (项目, 内容, code, text, score, kinds, category, negative list) — written for this demo.
TREE: list[tuple[str, str, str, str, int, list[str], str, bool]] = [
    ("公共环境卫生", "环境整洁", "S01", "地面干净，无垃圾、无积存污水", 10, ALL, "环境卫生", False),
    ("公共环境卫生", "环境整洁", "S02", "垃圾桶分类清晰、及时清运、无外溢", 5,
     [k for k in ALL if k != "service_hall"], "垃圾外溢", False),
    ("公共环境卫生", "环境整洁", "S03", "墙面、杆体无乱贴乱画和小广告", 5, ALL, "乱贴乱画", False),
    ("公共环境卫生", "设施完好", "S04", "座椅、站牌、护栏等公共设施完好可用", 5,
     ["bus_stop", "park", "toilet", "station", "scenic"], "设施损坏", False),
    ("公共环境卫生", "设施完好", "S05", "公厕干净无异味，有专人保洁", 10,
     ["toilet", "park", "scenic", "station"], "环境卫生", False),
    ("公共秩序", "交通秩序", "S06", "机动车、非机动车有序停放，无占道违停", 10,
     ["crossing", "school", "hospital", "station", "hotel", "service_hall"], "车辆违停", False),
    ("公共秩序", "交通秩序", "S07", "路口有人值守引导，行人和非机动车守信号", 5,
     ["crossing", "school"], "交通秩序", False),
    ("公共秩序", "经营秩序", "S08", "周边无占道经营、出店经营", 5,
     ["school", "station", "hospital", "netcafe", "hotel", "crossing"], "占道经营", False),
    ("宣传氛围", "公益广告", "S09", "公益广告醒目、数量适当、无破损褪色", 5, ALL, "公益广告缺失",
     False),
    ("重点场所管理", "工地管理", "S10", "施工现场连续封闭围挡，出入口车辆冲洗", 10,
     ["construction"], "建筑工地围挡", False),
    ("重点场所管理", "未成年人保护", "S11", "网吧入口有禁止未成年人进入标志且落实登记", 10,
     ["netcafe"], "其他", True),
    ("重点场所管理", "服务窗口", "S12", "窗口有文明用语提示和便民服务设施", 5,
     ["service_hall", "hospital", "station", "hotel"], "其他", False),
    ("负面清单", "重大问题", "S13", "无大面积垃圾堆积、黑臭水体", 5, ALL, "环境卫生", True),
]  # fmt: skip


def _jpeg(label: str) -> bytes:
    image = Image.new("RGB", (320, 240), (176, 190, 197))
    draw = ImageDraw.Draw(image)
    draw.rectangle([20, 20, 300, 220], outline=(183, 28, 28), width=6)
    draw.text((40, 110), label, fill=(33, 33, 33))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=70)
    return out.getvalue()


def _point_in(geom, rng: random.Random) -> Point:
    minx, miny, maxx, maxy = geom.bounds
    for _ in range(200):
        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if geom.contains(p):
            return p
    return geom.representative_point()


def _square(p: Point, metres: float):
    from shapely.geometry import box

    dx, dy = metres / 92_500 / 2, metres / 111_000 / 2
    return box(p.x - dx, p.y - dy, p.x + dx, p.y + dy)


def load_assessment_demo(
    session: Session,
    registry: LayerRegistry,
    county: Any,
    progress: Callable[[str], None] = lambda _msg: None,
    photo_store: PhotoStore | None = None,
) -> dict[str, int]:
    """Loads kinds, sites (with 点长), the example standards and two past rounds; the caller
    commits. Without `photo_store` the failure photos are recorded but their files not kept."""
    if "site" not in registry:
        return {}
    rng = random.Random(f"sites-{county.seed}")
    issues_before = session.scalar(text("SELECT count(*) FROM issues"))
    kind_rows = {}
    for code, name, geometry, colour, radius, precedence, attributes in KINDS:
        kind_rows[code] = kind_service.create_kind(
            session,
            {"code": code, "name": name, "geometry_type": geometry, "colour": colour,
             "claim_radius_m": radius, "precedence": precedence, "attributes": attributes},
        )  # fmt: skip
    progress(f"点位类别 {len(kind_rows)} 类")

    community_codes = {
        r.code: r.id for r in session.execute(text("SELECT id, code FROM admin_areas"))
    }
    # 点长 are leaders who already hold places (the demo keeps some leaders idle on purpose).
    leader_ids = session.scalars(
        text("SELECT DISTINCT leader_id FROM assignments ORDER BY leader_id")
    ).all()
    total = max(60, round(320 * county.scale))
    since = datetime.combine(county.today - timedelta(days=120), time(9), tzinfo=TZ)
    communities = county.communities
    # Every site is built and checked as sites.create_site builds and checks it, then all are
    # written in one flush and their 点长 in one INSERT (one statement per site and per
    # assignment before: a quarter of an hour at scale 100).
    new_sites: list[Site] = []
    holders: list[tuple[int, int]] = []  # (index in new_sites, leader id)
    for i in range(total):
        community = communities[i % len(communities)]
        code = ALL[i] if i < len(ALL) else rng.choices(ALL, weights=WEIGHTS)[0]
        kind = kind_rows[code]
        p = _point_in(community.geom, rng)
        attrs: dict[str, Any] = {}
        for a in kind.attributes:
            if a["type"] == "choice":
                attrs[a["name"]] = rng.choice(a["choices"])
            elif a["type"] == "integer":
                attrs[a["name"]] = rng.randint(20, 200)
            elif a["type"] == "date":
                attrs[a["name"]] = (county.today - timedelta(days=rng.randint(30, 400))).isoformat()
            else:
                attrs[a["name"]] = rng.choice(["县建工集团", "城投建设", "宏达建筑"])
        payload: dict[str, Any] = {
            "code": f"{code.upper()}-{i + 1:04d}",
            "name": f"{community.name}{kind.name}{i // len(communities) + 1}",
        }
        if kind.geometry_type == "polygon":
            payload["geometry"] = _square(p, rng.uniform(60, 160)).__geo_interface__
        else:
            payload["lon"], payload["lat"] = round(p.x, 7), round(p.y, 7)
        new_sites.append(
            Site(
                code=payload["code"],
                name=payload["name"],
                kind_id=kind.id,
                geom=from_shape(sites.parse_geometry(payload, kind), srid=4326),
                address=None,
                community_area_id=community_codes.get(community.code),
                attributes=kind_service.check_attribute_values(list(kind.attributes), attrs),
            )
        )
        if leader_ids and rng.random() > 0.06:  # a few sites without 点长 (coverage audit)
            holders.append((i, rng.choice(leader_ids)))
    session.add_all(new_sites)
    session.flush()
    session.execute(
        text(
            """UPDATE sites s SET community_area_id = (
  SELECT a.id FROM admin_areas a WHERE a.level = 'community'
    AND ST_Covers(a.geom, ST_PointOnSurface(s.geom)) ORDER BY a.id LIMIT 1)
WHERE s.id = ANY(:ids) AND s.community_area_id IS NULL"""
        ),
        {"ids": [site.id for site in new_sites]},
    )  # sites._link_community, for all of them
    if holders:
        session.execute(
            insert(Assignment.__table__),
            [
                {"leader_id": leader, "place_id": new_sites[i].id, "role": "点长",
                 "is_primary": True, "valid_from": since}
                for i, leader in holders
            ],
        )  # fmt: skip
    created = len(new_sites)
    progress(f"点位 {created} 个")
    # Statistics for the rows this (single) transaction wrote: see geoservice.demo.seed.
    session.execute(text("ANALYZE places, sites, assignments"))

    version = standards.create_version(
        session,
        "演示测评体系（示例）",
        [
            (n + 1, {"item_code": str(_item_no(item)), "item": item,
                     "content_code": f"{_item_no(item)}.{_content_no(item, content)}",
                     "content": content, "code": code, "text": body, "score": score,
                     "kinds": kinds, "category": category, "negative_list": negative})
            for n, (item, content, code, body, score, kinds, category, negative) in enumerate(TREE)
        ],
        list(DEFAULTS["ISSUE_CATEGORIES"]),
        note="演示用示例，由本系统编写，非官方测评体系",
    )  # fmt: skip
    progress(f"测评标准 {len(TREE)} 条")

    inspector = User(username="demo_inspector", display_name="演示测评员", role="inspector")
    session.add(inspector)
    session.flush()
    settings = replace(
        IssueSettings.from_config(DEFAULTS),
        report_min_photos=0,
        store=photo_store or _NullStore(),
    )
    photo_bytes = _jpeg("DEMO")
    photo = prepare(Upload(photo_bytes, "demo.jpg", "image/jpeg"), settings.photo_limits, TZ)
    session.execute(text("ANALYZE standards, standard_kinds"))
    results = 0
    for number, (offset, fail_rate) in enumerate(((42, 0.22), (14, 0.12)), start=1):
        start = county.today - timedelta(days=offset)
        found = rounds.create_round(
            session,
            {"name": f"第{number}轮模拟测评（{start.month}月）", "starts_on": start.isoformat(),
             "ends_on": (start + timedelta(days=3)).isoformat(), "version_id": version.id,
             "sample_per_kind": 2, "seed": county.seed * 100 + number,
             "inspector_id": inspector.id},
        )  # fmt: skip
        results += _record_round(
            session, registry, settings, found, start, fail_rate, rng, photo, inspector
        )
    progress(f"模拟测评 2 轮，结果 {results} 条")
    raised = session.scalar(text("SELECT count(*) FROM issues")) - issues_before
    return {
        "site_kinds": len(kind_rows),
        "sites": created,
        "assessment_results": results,
        "issues": raised or 0,
    }


def _item_no(item: str) -> int:
    return list(dict.fromkeys(t[0] for t in TREE)).index(item) + 1


def _content_no(item: str, content: str) -> int:
    return list(dict.fromkeys(t[1] for t in TREE if t[0] == item)).index(content) + 1


def _record_round(
    session: Session,
    registry: LayerRegistry,
    settings: IssueSettings,
    found: Any,
    start: date,
    fail_rate: float,
    rng: random.Random,
    photo: Any,
    inspector: User,
) -> int:
    """Records every sampled site's results as an inspector would, one site after another with
    rounds.submit_results, in one pass: the outcomes are drawn in the same order, a 不合格
    raises its issue through the same report path (rounds.raise_issue, in the same order, so
    issue, event and photo ids are the same), and the result rows, built as rounds._record
    builds them, are written in one INSERT in recording order (same ids). The checks
    submit_results makes of a person's input (standard of the round's version and of the site's
    kind, no repeat, photo with a 不合格) hold by construction here."""
    site_rows = rounds.round_sites(session, found.id)
    kind_of = dict(
        session.execute(
            text(
                "SELECT s.id, s.kind_id FROM round_sites rs JOIN sites s ON s.id = rs.site_id"
                " WHERE rs.round_id = :r"
            ),
            {"r": found.id},
        ).all()
    )
    # The check-in distance rounds.submit_results measures (the site's anchor, ~0 m).
    distance_of = dict(
        session.execute(
            text(
                """SELECT s.id, ST_Distance(s.geom::geography, ST_SetSRID(ST_MakePoint(
    ST_X(ST_PointOnSurface(s.geom)), ST_Y(ST_PointOnSurface(s.geom))), 4326)::geography)
FROM round_sites rs JOIN sites s ON s.id = rs.site_id WHERE rs.round_id = :r"""
            ),
            {"r": found.id},
        ).all()
    )
    sheets: dict[int, list[dict[str, Any]]] = {}
    standard_rows: dict[int, Standard] = {}
    results: list[dict[str, Any]] = []
    for n, row in enumerate(site_rows):
        kind_id = kind_of[row["id"]]
        if kind_id not in sheets:
            sheets[kind_id] = standards.applicable(session, found.version_id, kind_id)
        outcomes = []
        for s in sheets[kind_id]:
            roll = rng.random()
            outcome = "na" if roll < 0.03 else ("fail" if roll < 0.03 + fail_rate else "pass")
            outcomes.append((s["id"], outcome))
        if not outcomes:
            continue
        day = start + timedelta(days=n % 3)
        at = datetime.combine(day, time(9 + n % 8, (n * 7) % 60), tzinfo=TZ).astimezone(UTC)
        lon, lat = float(row["lon"]), float(row["lat"])
        distance = float(distance_of[row["id"]])
        for standard_id, outcome in outcomes:
            issue_id = photo_id = None
            if outcome == "fail":
                if standard_id not in standard_rows:
                    standard_rows[standard_id] = session.get(Standard, standard_id)
                issue = rounds.raise_issue(
                    session, registry, settings, found, session.get(Site, row["id"]),
                    standard_rows[standard_id], "", photo, inspector, at,
                )  # fmt: skip
                issue_id = issue.id
                photo_id = session.scalar(
                    select(Photo.id).where(Photo.issue_id == issue.id).order_by(Photo.id).limit(1)
                )
            results.append(
                {
                    "round_id": found.id,
                    "site_id": row["id"],
                    "standard_id": standard_id,
                    "outcome": outcome,
                    "note": "",
                    "photo_id": photo_id,
                    "issue_id": issue_id,
                    "checkin": from_shape(Point(lon, lat), srid=4326),
                    "distance_m": distance,
                    "far": distance > found.checkin_radius_m,
                    "recorded_by_id": inspector.id,
                    "recorded_at": at,
                    "corrects_id": None,
                    "reason": None,
                }
            )
    if results:
        session.execute(insert(AssessmentResult.__table__), results)
    return len(results)


class _NullStore(PhotoStore):
    """Keeps no files (demo loaded without an upload folder)."""

    def __init__(self) -> None:
        super().__init__("/nonexistent")

    def save(self, photo: Any) -> None:
        return None
