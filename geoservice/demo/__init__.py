"""Deterministic synthetic demo county (演示县, 盐城市, Jiangsu) for demos, benchmarks and tests.

Pure Python (numpy + shapely 2.2); no database and no Flask. ``generate_county(seed, scale)``
builds a fictional county town around lon 120.26 / lat 33.78:

* the admin tree 县 → 街道 → 社区 and the 网格 that tile it.  The tiling is built bottom-up
  from a Voronoi tessellation of jittered seed points clipped to an irregular town outline, so
  every level is the exact (coverage) union of the level below and shares its vertices;
* a graded road network (主干道 / 次干道 / 背街小巷), 农贸市场 and 居民小区;
* responsibility units (单位), leaders (包保领导) and 包保 assignments, with some history
  (reassignments) and deliberate gaps (features nobody answers for, idle leaders);
* a lazily streamed, deterministic issue log (问题) whose status events follow the closed loop
  reported → accepted|rejected → dispatched → in_progress → fixed (→ in_progress …) → closed.

Geometry is built in a local metric frame (an affine lon/lat ↔ metres map around the centre,
see `to_metres` / `to_lonlat`) and returned in EPSG:4326 rounded to 7 decimals.

Sizes grow linearly with ``scale``; the town's area grows with it, so densities stay realistic
(at scale 1 the town is about 6 × 5 km, ~24 km²):

==================  ======================================================  =========
item                rule                                                    scale 1
==================  ======================================================  =========
streets (街道/镇)    max(4, round(4·s))                                      4
communities (社区)   max(2·streets, round(24·s))                             24
grids (网格)         ≈ 300·s, balanced to ~8–20 per community                ~300
主干道               curved lines ~1.6 km apart across the town, cut into    8–10
                    ≤ 5 km sections (人民东路 / 人民西路, 幸福大道南段 …)
次干道               round(25·s)                                             25
背街小巷             round(90·s)                                             90
markets (农贸市场)   max(2, round(12·s)); ~15 % of them are points           12
compounds (小区)     round(80·s), each inside one grid                       ~80
units               16 county/city units + one 街道办事处 per street         20
                    (≈ 16 + 4·s); 2 牵头单位 (县文明办, 县城管局)
leaders             round(2√s) 市级 + max(3, round(6√s)) 县领导 + 14 局长    60
                    + round(2·(s − 1)) 副局长 + 2 per street + 1 per
                    community + 1 居委会主任 per 4 communities (≈ 41·s + 20)
issues              round(10 000·s) over the 8 weeks ending with `today`    10 000
==================  ======================================================  =========

Assignments: 网格长 (community leaders) for grids, 道路长 for roads (county leaders for
主干道, bureau heads for 次干道, street leaders for 背街小巷), 点长 for markets, 包保责任人 /
楼栋长 for compounds; ~25–60 % also get a non-primary second role; ~5 % have a reassignment
(an ended primary row and its successor); ~3 % of each layer and two leaders are left unassigned.

Timing (one core): scale 1 builds in ~0.3 s, scale 100 in ~25 s; `issues()` streams
~70–90 k issues/s.

The package owns the generator, split along its sections (model, frame, names, graph, tiling,
places, people, assignments, issues, generator), and seed.py, which loads a county into the
database. May import: every domain package and plumbing; never an edge.
"""

from __future__ import annotations

from geoservice.demo.frame import to_lonlat, to_metres
from geoservice.demo.generator import generate_county
from geoservice.demo.model import (
    CENTER_LAT,
    CENTER_LON,
    COUNTY_CODE,
    COUNTY_NAME,
    ISSUE_WINDOW_DAYS,
    TZ,
    DemoArea,
    DemoAssignment,
    DemoCounty,
    DemoEvent,
    DemoFeature,
    DemoIssue,
    DemoLeader,
    DemoUnit,
)

__all__ = [
    "CENTER_LAT",
    "CENTER_LON",
    "COUNTY_CODE",
    "COUNTY_NAME",
    "ISSUE_WINDOW_DAYS",
    "TZ",
    "DemoArea",
    "DemoAssignment",
    "DemoCounty",
    "DemoEvent",
    "DemoFeature",
    "DemoIssue",
    "DemoLeader",
    "DemoUnit",
    "generate_county",
    "to_lonlat",
    "to_metres",
]
