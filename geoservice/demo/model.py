"""The demo county generator: the public data model."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry

if TYPE_CHECKING:  # annotations only
    from geoservice.demo.issues import _IssueSampler


COUNTY_CODE = "320999"  # 盐城市 演示县 (fictional code under 3209 盐城市)
COUNTY_NAME = "演示县"
CENTER_LON = 120.26
CENTER_LAT = 33.78
TZ = ZoneInfo("Asia/Shanghai")
ISSUE_WINDOW_DAYS = 56  # issues are reported over the 8 weeks ending with `today`

_PHI = math.radians(CENTER_LAT)
M_PER_DEG_LAT = 111132.92 - 559.82 * math.cos(2 * _PHI) + 1.175 * math.cos(4 * _PHI)
M_PER_DEG_LON = 111412.84 * math.cos(_PHI) - 93.5 * math.cos(3 * _PHI)


@dataclass
class DemoArea:
    level: str  # "county" | "street" | "community"
    code: str  # 6 / 9 / 12 digits
    name: str
    parent_code: str | None
    geom: MultiPolygon  # EPSG:4326


@dataclass
class DemoFeature:
    layer: str  # "grid" | "road" | "market" | "compound"
    code: str
    name: str
    geom: BaseGeometry  # EPSG:4326
    attrs: dict[str, Any]


@dataclass
class DemoUnit:
    name: str
    is_lead: bool  # 牵头单位


@dataclass
class DemoLeader:
    key: int
    name: str
    title: str
    unit_name: str
    phone: str
    level: str  # one of LEADER_LEVELS


@dataclass
class DemoAssignment:
    leader_key: int
    layer: str
    code: str
    role: str  # one of ASSIGNMENT_ROLES
    is_primary: bool
    valid_from: datetime
    valid_to: datetime | None


@dataclass(slots=True)
class DemoEvent:
    at: datetime
    from_status: str | None
    to_status: str
    note: str


@dataclass(slots=True)
class DemoIssue:
    lon: float
    lat: float
    category: str
    source: str
    description: str
    severity: int
    negative_list: bool
    status: str
    reported_at: datetime
    deadline: datetime | None
    closed_at: datetime | None
    rework_count: int
    events: list[DemoEvent]


@dataclass
class SurveyDefects:
    """Mistakes a real grid survey has, planted so the coverage audit has something to find.

    `ungridded`: grids left out of the layer — their ground is covered by no grid (a gap).
    `widened`: grids drawn `WIDENED_BY_M` too wide — they overlap their neighbours.
    """

    ungridded: list[str] = field(default_factory=list)
    widened: list[str] = field(default_factory=list)


WIDENED_BY_M = 20.0


@dataclass
class DemoCounty:
    seed: int
    scale: float
    today: date
    county: DemoArea
    streets: list[DemoArea]
    communities: list[DemoArea]
    features: dict[str, list[DemoFeature]]
    units: list[DemoUnit]
    leaders: list[DemoLeader]
    assignments: list[DemoAssignment]
    _sampler: _IssueSampler | None = field(default=None, repr=False, compare=False)
    defects: SurveyDefects = field(default_factory=SurveyDefects)

    def issue_count(self) -> int:
        """How many issues `issues()` yields: round(10 000 · scale)."""
        return max(0, round(10_000 * self.scale))

    def issues(self) -> Iterator[DemoIssue]:
        """Streams the issue log lazily, in batches; deterministic for (seed, scale, today)."""
        if self._sampler is None:
            raise RuntimeError("DemoCounty was not built by generate_county()")
        return self._sampler.iterate(self.issue_count())
