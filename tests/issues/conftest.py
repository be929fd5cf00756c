"""Fixtures for issue tests: a constructed layout with leaders, accounts, an upload folder.

Layout (metres from the origin, see tests/factories.py): the county 0..1200 × 0..1200; grid G1
0..400 × 0..400 and G2 400..800 × 0..400 (sharing the edge x = 400); a compound 50..150 ×
50..180 beside a 主干道 along y = 200 (claims 40 m); a 背街小巷 along x = 300 (15 m); a market
250..280 × 20..50 that nobody answers for. Everything from y > 400 is in the county but in no
grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from tests.factories import add_feature, add_leader, assign, line, rect
from tests.issues.helpers import account, add_area, image_bytes

T0 = datetime(2015, 10, 1, tzinfo=UTC)
T1 = datetime(2015, 11, 1, tzinfo=UTC)


@dataclass
class Layout:
    places: dict
    leaders: dict
    accounts: dict  # name -> (user, headers)

    def headers(self, name: str) -> dict[str, str]:
        return self.accounts[name][1]

    def user(self, name: str):
        return self.accounts[name][0]


@pytest.fixture
def uploads(app, tmp_path, monkeypatch):
    path = tmp_path / "uploads"
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(path))
    return path


@pytest.fixture
def layout(db_session, uploads) -> Layout:
    s = db_session
    add_area(s, "320999", rect(-200, -200, 1200, 1200))
    places = {
        "g1": add_feature(s, "grid", "320999001001001", rect(0, 0, 400, 400)),
        "g2": add_feature(s, "grid", "320999001001002", rect(400, 0, 800, 400)),
        "compound": add_feature(
            s, "compound", "C1", rect(50, 50, 150, 180), compound_type="老旧小区", name="阳光小区"
        ),
        "main_road": add_feature(
            s, "road", "R1", line((-100, 200), (900, 200)), grade="主干道", name="人民路"
        ),
        "lane": add_feature(
            s, "road", "R2", line((300, -100), (300, 500)), grade="背街小巷", name="书院巷"
        ),
        "market": add_feature(s, "market", "M1", rect(250, 20, 280, 50), name="城南菜市场"),
    }
    leaders = {
        "grid": add_leader(s, "张网格", unit="城南街道"),
        "g2": add_leader(s, "赵网格", unit="城北街道"),
        "old": add_leader(s, "王建国", unit="县住建局"),
        "new": add_leader(s, "李明", unit="县住建局"),
        "road": add_leader(s, "陈道路", unit="县城管局"),
        "other": add_leader(s, "孙其他", unit="县教育局"),
    }
    assign(s, leaders["grid"], places["g1"], T0, role="网格长")
    assign(s, leaders["g2"], places["g2"], T0, role="网格长")
    assign(s, leaders["old"], places["compound"], T0, T1)
    assign(s, leaders["new"], places["compound"], T1)
    assign(s, leaders["road"], places["main_road"], T0, role="道路长")
    assign(s, leaders["road"], places["lane"], T0, role="道路长")
    accounts = {
        "inspector": account(s, "inspector"),
        "integration": account(s, "integration"),
        "planner": account(s, "planner"),
        "viewer": account(s, "viewer"),
        "admin": account(s, "admin"),
        "leader_new": account(s, "leader", leaders["new"]),
        # 王建国 answers for nothing now but is bound to the county: sees its issues.
        "leader_old": account(s, "leader", leaders["old"], area_code="320999"),
        "integration_read_only": account(s, "integration", scopes=["issues.read"]),
        "leader_road": account(s, "leader", leaders["road"]),
        "leader_other": account(s, "leader", leaders["other"]),
    }
    return Layout(places, leaders, accounts)


@pytest.fixture
def jpeg():
    return image_bytes("JPEG")
