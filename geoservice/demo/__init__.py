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
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from geoservice.vocab import (
    CATEGORY_DEADLINE_HOURS,
    COMPOUND_TYPES,
    GRID_TYPES,
    ISSUE_SOURCES,
    LEADER_LEVELS,
    PROPERTY_TYPES,
    ROAD_GRADES,
    SEVERITIES,
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

COUNTY_CODE = "320999"  # 盐城市 演示县 (fictional code under 3209 盐城市)
COUNTY_NAME = "演示县"
CENTER_LON = 120.26
CENTER_LAT = 33.78
TZ = ZoneInfo("Asia/Shanghai")
ISSUE_WINDOW_DAYS = 56  # issues are reported over the 8 weeks ending with `today`

_PHI = math.radians(CENTER_LAT)
M_PER_DEG_LAT = 111132.92 - 559.82 * math.cos(2 * _PHI) + 1.175 * math.cos(4 * _PHI)
M_PER_DEG_LON = 111412.84 * math.cos(_PHI) - 93.5 * math.cos(3 * _PHI)

# ---------------------------------------------------------------------------------------------
# Public data model
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Local metric frame
# ---------------------------------------------------------------------------------------------


def _xy_to_lonlat(xy: np.ndarray) -> np.ndarray:
    out = np.empty(xy.shape, dtype=float)
    out[:, 0] = np.round(CENTER_LON + xy[:, 0] / M_PER_DEG_LON, 7)
    out[:, 1] = np.round(CENTER_LAT + xy[:, 1] / M_PER_DEG_LAT, 7)
    return out


def _lonlat_to_xy(ll: np.ndarray) -> np.ndarray:
    out = np.empty(ll.shape, dtype=float)
    out[:, 0] = (ll[:, 0] - CENTER_LON) * M_PER_DEG_LON
    out[:, 1] = (ll[:, 1] - CENTER_LAT) * M_PER_DEG_LAT
    return out


def to_metres(geom: Any) -> Any:
    """EPSG:4326 lon/lat → local metres (x east, y north) around the county centre.

    Accepts a geometry or an array of geometries.
    """
    return shapely.transform(geom, _lonlat_to_xy)


def to_lonlat(geom: Any) -> Any:
    """Local metres → EPSG:4326 lon/lat, coordinates rounded to 7 decimals (≈ 1 cm)."""
    return shapely.remove_repeated_points(shapely.transform(geom, _xy_to_lonlat), 0.0)


# ---------------------------------------------------------------------------------------------
# Vocabulary of names
# ---------------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


_MAIN_STEMS = _words(
    "人民 解放 建设 黄海 幸福 振阳 开放 新华 青年 胜利 文化 迎宾 世纪 希望 东进 盐渎 范公 串场 "
    "通榆 新洋 海洋 环城 府前 站前 长江 淮河 黄河 珠江 中山 学海 健康 新都 开发 跃进 友谊 和平"
)
_SECONDARY_STEMS = _words(
    "育才 文昌 团结 光明 红旗 东风 朝阳 向阳 工农 民主 公园 体育 学府 园林 鼓楼 钟楼 南门 北门 "
    "西门 东门 新民 利民 惠民 便民 安居 永安 太平 宝塔 文庙 板桥 仓桥 双桥 五星 红星 金桥 银杏 "
    "春晖 丰收 兴盛 长安 东方 南苑 西园 康居 翠竹 龙泉 凤凰 新村 富民 振兴 新兴 繁荣 裕华 洋桥 "
    "河滨 滨湖 湖滨 锦绣 明珠 金港 海韵 晨曦 嘉和 祥和 富康"
)
_LANE_STEMS = _words(
    "文庙 仓 米市 鱼市 盐仓 书院 大井 双井 竹林 桂花 石板 城隍庙 关帝 三元 状元 县前 衙前 牌楼 "
    "糖坊 油坊 染坊 木瓜 杨家 王家 李家 陈家 周家 吴家 孙家 许家 徐家 顾家 沈家 曹家 卞家 薛家 "
    "戴家 蒋家 唐家 梅花 杏花 荷花 柳树 槐树 井 水关 东 西 南 北 后 前 太平 永宁 "
    "积善 仁义 丁字 十字 草 打铁 箍桶 酱园 茶馆 学宫 府 察院 皂角 当铺 银杏 枣树"
)
_STREET_STEMS = _words(
    "新城 新兴 振兴 文峰 新港 海通 望海 南洋 通榆 串场 新洋 大新 五龙 兴桥 沙港 大冈 秦南 龙冈 "
    "尚庄 楼王 学富 伍佑 步凤 新丰 南阳 便仓 小海 白驹 草堰 刘庄 西团 四明 海河 大中 万盈 三龙 "
    "草庙 合德 陈洋 新街 裕华 盘湾 特庸 洋马 黄尖 兴桥 开庄 新沟 永丰 建湖 上冈 宝塔 高作"
)
_COMMUNITY_STEMS = _words(
    "幸福 和平 新华 阳光 文昌 育才 兴盛 长安 东方 南苑 北门 西园 康居 翠竹 龙泉 凤凰 金桥 银杏 "
    "春晖 振阳 迎宾 解放 人民 建设 团结 友谊 青年 胜利 光明 朝阳 东风 红旗 府前 学府 文化 健康 "
    "向阳 聚福 鼓楼 钟楼 南门 西门 东门 新洋 串场 大桥 河滨 滨湖 湖滨 园林 锦绣 丽都 盛世 新城 "
    "开元 永安 太平 宝塔 文庙 板桥 仓桥 双桥 五星 红星 新民 利民 便民 惠民 安居 乐居 怡园 绿苑 "
    "海韵 晨曦 明珠 金港 康乐 嘉和 祥和 富康 鸿福 运河 通榆 黄海 海滨 新港 南湖 北湖 翠湖 莲花 "
    "荷花 梅园 桃园 杏林 松林 柳堤 枫林 樱花 兰亭 紫薇 玉兰 丹桂 东苑 西苑 北苑 中兴 振兴 复兴"
)
_COMPOUND_STEMS = _words(
    "阳光 锦绣 金色 翡翠 碧水 润达 东方 中央 世纪 盛世 名都 凤凰 天鹅湖 香榭 星河 御景 紫金 "
    "金鹰 宝龙 城南 城北 城东 城西 国际 水岸 滨河 湖畔 公园 枫丹 丽景 华庭 银河 明月 清风 "
    "兰香 桂香 荷塘 柳岸 春天 金秋 新天地 未来 蓝湾 绿洲 橄榄 梧桐 海棠 紫荆 牡丹 玫瑰 "
    "书香 学府 文苑 雅居 怡景 欣悦 和美 佳和 康桥 瑞丰 盛泰 安泰 恒大 万和 福瑞 鑫源 "
    "金地 银座 碧桂 新城 龙湖 中南 金科 华邦 润园 悦府"
)
_OLD_WORK_UNITS = _words(
    "粮食局 供销社 化肥厂 棉纺厂 电厂 机械厂 食品站 物资局 邮电局 水利局 税务局 农机厂 酒厂 "
    "纺织厂 印刷厂 五金厂 轧花厂 油脂厂 交通局 卫生局 人武部 气象站 糖烟酒公司 百货公司"
)
_GEN_FIRST = (
    "安宝长昌成达大德东丰福富广海和恒红宏华惠吉嘉建金锦景康乐利隆龙茂民明南鹏平庆瑞润盛胜顺"
    "泰天通旺文祥新兴学阳益永裕元振正中洲春秋翠绿清云星月"
)
_GEN_SECOND = "安昌城达丰福港和河湖华辉佳家居康乐林隆明宁平桥庆泉荣瑞山盛顺泰塘兴阳园源庄苑湾堤"

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏"
    "魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵"
    "万钱严覃武戴莫孔向汤卞缪仇季"
)
_GIVEN_MALE = (
    "伟强磊军洋勇杰涛明超刚辉建国志斌宇鹏飞浩凯峰亮波海林彬翔博"
    "鑫俊东卫兵荣新忠民德永光庆松文华平宁晨"
)
_GIVEN_FEMALE = "芳娜敏静丽艳娟霞玲红婷雪梅琳燕春慧颖蕾云欣佳晓萍丹瑞楠涵媛秀英兰凤桂珍文华平宁晨"
_PHONE_PREFIXES = _words(
    "130 131 132 133 135 136 137 138 139 150 151 152 153 155 156 157 158 159 "
    "180 181 182 183 185 186 187 188 189 191 193 195 198 199"
)
_CN_DIGITS = "零一二三四五六七八九"


def _cn_number(n: int) -> str:
    """1..99 → 一 … 九十九 (larger numbers in digits)."""
    if n >= 100:
        return str(n)
    if n < 10:
        return _CN_DIGITS[n]
    tens, ones = divmod(n, 10)
    head = "" if tens == 1 else _CN_DIGITS[tens]
    return head + "十" + (_CN_DIGITS[ones] if ones else "")


def _generated_stems() -> list[str]:
    return [a + b for a in _GEN_FIRST for b in _GEN_SECOND if a != b]


class _Names:
    """Draws unique names from a shuffled stem pool (curated stems first, then generated ones).

    `used` is shared between pools so that names are unique across a whole layer family.
    With `cycle=True` the stems are reused (with other suffixes) once exhausted.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        curated: Sequence[str],
        used: set[str],
        cycle: bool = False,
    ) -> None:
        self._rng = rng
        cur = list(dict.fromkeys(curated))
        rng.shuffle(cur)
        seen = set(cur)
        gen = [s for s in _generated_stems() if s not in seen]
        rng.shuffle(gen)
        self._stems = cur + gen
        self._pos = 0
        self._used = used
        self._cycle = cycle

    def _next_stem(self) -> str:
        if self._pos >= len(self._stems):
            if not self._cycle:
                raise RuntimeError("name pool exhausted")
            self._pos = 0
        stem = self._stems[self._pos]
        self._pos += 1
        return stem

    def try_take(self, make: Callable[[str], str]) -> tuple[str, str] | None:
        """Next unused name, or None when every stem is used (non-cycling pools)."""
        for _ in range(2 * len(self._stems)):
            if self._pos >= len(self._stems) and not self._cycle:
                return None
            stem = self._next_stem()
            name = make(stem)
            if name not in self._used:
                self._used.add(name)
                return stem, name
        return None

    def take(self, make: Callable[[str], str]) -> tuple[str, str]:
        got = self.try_take(make)
        if got is None:
            raise RuntimeError("name pool exhausted")
        return got


def _pick(
    rng: np.random.Generator, options: Sequence[str], p: Sequence[float] | None = None
) -> str:
    if p is None:
        return options[int(rng.integers(len(options)))]
    w = np.asarray(p, dtype=float)
    return options[int(rng.choice(len(options), p=w / w.sum()))]


# ---------------------------------------------------------------------------------------------
# Generic graph helpers (adjacency, partitioning)
# ---------------------------------------------------------------------------------------------


class _Retry(Exception):
    """Raised when a random draw produced an unusable configuration; the build is redone."""


def _shared_edges(polys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) of polygons sharing boundary segments (exact vertex matches), with the
    shared length in metres. Works because the tiling's neighbours share identical vertices."""
    rings, owner_ring = shapely.get_rings(polys, return_index=True)
    coords, ring_idx = shapely.get_coordinates(rings, return_index=True)
    owner = owner_ring[ring_idx]
    same = ring_idx[1:] == ring_idx[:-1]
    a = coords[:-1][same]
    b = coords[1:][same]
    own = owner[:-1][same]
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    p = np.where(swap[:, None], b, a)
    q = np.where(swap[:, None], a, b)
    seg_len = np.hypot((q[:, 0] - p[:, 0]) * M_PER_DEG_LON, (q[:, 1] - p[:, 1]) * M_PER_DEG_LAT)
    keys = np.concatenate([p, q], axis=1)
    _, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.ravel()
    order = np.argsort(inv, kind="stable")
    inv_s = inv[order]
    dup = inv_s[1:] == inv_s[:-1]
    i = own[order[:-1][dup]]
    j = own[order[1:][dup]]
    w = seg_len[order[:-1][dup]]
    keep = (i != j) & (w > 0)
    return _aggregate_pairs(i[keep], j[keep], w[keep], len(polys))


def _aggregate_pairs(
    i: np.ndarray, j: np.ndarray, w: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    lo = np.minimum(i, j).astype(np.int64)
    hi = np.maximum(i, j).astype(np.int64)
    key = lo * n + hi
    uniq, inv = np.unique(key, return_inverse=True)
    wsum = np.bincount(inv.ravel(), weights=w, minlength=len(uniq))
    return np.stack([uniq // n, uniq % n], axis=1), wsum


def _label_pairs(
    pairs: np.ndarray, w: np.ndarray, labels: np.ndarray, n_labels: int
) -> tuple[np.ndarray, np.ndarray]:
    a = labels[pairs[:, 0]]
    b = labels[pairs[:, 1]]
    m = a != b
    return _aggregate_pairs(a[m], b[m], w[m], n_labels)


def _neighbours(n: int, pairs: np.ndarray, w: np.ndarray) -> list[dict[int, float]]:
    nbrs: list[dict[int, float]] = [{} for _ in range(n)]
    for (a, b), ww in zip(pairs.tolist(), w.tolist(), strict=True):
        nbrs[a][b] = ww
        nbrs[b][a] = ww
    return nbrs


def _groups(labels: np.ndarray) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for node, lab in enumerate(labels.tolist()):
        out.setdefault(lab, []).append(node)
    return out


def _components(nodes: Sequence[int], nbrs: list[dict[int, float]]) -> list[list[int]]:
    todo = set(nodes)
    comps: list[list[int]] = []
    for start in nodes:
        if start not in todo:
            continue
        todo.discard(start)
        comp = [start]
        stack = [start]
        while stack:
            u = stack.pop()
            for v in nbrs[u]:
                if v in todo:
                    todo.discard(v)
                    comp.append(v)
                    stack.append(v)
        comps.append(sorted(comp))
    return comps


def _make_contiguous(
    labels: np.ndarray, nbrs: list[dict[int, float]], size: np.ndarray
) -> np.ndarray:
    """Moves the smaller disconnected parts of each label to the neighbouring label that shares
    the longest boundary with them, until every label is one connected set."""
    labels = labels.copy()
    for _ in range(1000):
        changed = False
        for lab, nodes in sorted(_groups(labels).items()):
            comps = _components(nodes, nbrs)
            if len(comps) <= 1:
                continue
            comps.sort(key=lambda c: (-float(size[c].sum()), c[0]))
            for comp in comps[1:]:
                shared: dict[int, float] = {}
                for u in comp:
                    for v, ww in nbrs[u].items():
                        other = int(labels[v])
                        if other != lab:
                            shared[other] = shared.get(other, 0.0) + ww
                if shared:
                    best = max(sorted(shared), key=lambda k: shared[k])
                    labels[comp] = best
                    changed = True
        if not changed:
            return labels
    raise _Retry("contiguity did not converge")


def _is_connected(nodes: set[int], nbrs: list[dict[int, float]]) -> bool:
    if len(nodes) <= 1:
        return True
    start = min(nodes)
    seen = {start}
    stack = [start]
    while stack:
        u = stack.pop()
        for v in nbrs[u]:
            if v in nodes and v not in seen:
                seen.add(v)
                stack.append(v)
    return len(seen) == len(nodes)


def _balance(
    labels: np.ndarray,
    nbrs: list[dict[int, float]],
    pos: np.ndarray,
    lo: int,
    hi: int,
) -> np.ndarray:
    """Moves boundary nodes from larger to smaller neighbouring labels, keeping every label
    connected, until every label has lo..hi nodes (as far as possible) and no two neighbours
    differ by more than a gap. Each move lowers the sum of squared sizes, so this terminates."""
    labels = labels.copy()
    members = {k: set(v) for k, v in _groups(labels).items()}
    gap = max(3, round(0.45 * (lo + hi) / 2))

    def threshold(small: int, big: int) -> int:
        return 2 if len(members[small]) < lo or len(members[big]) > hi else gap

    def try_move(src: int, dst: int) -> bool:
        centre = pos[sorted(members[dst])].mean(axis=0)
        cands = sorted(
            (u for u in members[src] if any(int(labels[v]) == dst for v in nbrs[u])),
            key=lambda u: (float(np.hypot(*(pos[u] - centre))), u),
        )
        for u in cands:
            if _is_connected(members[src] - {u}, nbrs):
                members[src].discard(u)
                members[dst].add(u)
                labels[u] = dst
                return True
        return False

    for _ in range(500):
        moved = 0
        for c in sorted(members, key=lambda k: (len(members[k]), k)):
            around = {int(labels[v]) for u in members[c] for v in nbrs[u]} - {c}
            for d in sorted(around, key=lambda k: (-len(members[k]), k)):
                if len(members[d]) - len(members[c]) < threshold(c, d):
                    break
                if try_move(d, c):
                    moved += 1
                    break
        if not moved:
            break
    return labels


def _nearest(centres: np.ndarray, pts: np.ndarray) -> np.ndarray:
    tree = shapely.STRtree(shapely.points(centres))
    res = tree.query_nearest(pts, all_matches=False)
    out = np.zeros(len(pts), dtype=np.int64)
    out[res[0]] = res[1]
    return out


def _kmeans(
    pts: np.ndarray, k: int, rng: np.random.Generator, weights: np.ndarray, iters: int = 30
) -> np.ndarray:
    """Weighted k-means (k-means++ start, Lloyd iterations); returns a label per point."""
    n = len(pts)
    k = max(1, min(k, n))
    centres = np.empty((k, 2))
    cum = np.cumsum(weights)
    first = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), n - 1)
    centres[0] = pts[first]
    d2 = ((pts - centres[0]) ** 2).sum(axis=1)
    for j in range(1, k):
        cum = np.cumsum(d2 * weights)
        idx = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), n - 1)
        centres[j] = pts[idx]
        d2 = np.minimum(d2, ((pts - centres[j]) ** 2).sum(axis=1))
    geoms = shapely.points(pts)
    labels = _nearest(centres, geoms)
    for _ in range(iters):
        ws = np.bincount(labels, weights=weights, minlength=k)
        sx = np.bincount(labels, weights=weights * pts[:, 0], minlength=k)
        sy = np.bincount(labels, weights=weights * pts[:, 1], minlength=k)
        new = centres.copy()
        ok = ws > 0
        new[ok, 0] = sx[ok] / ws[ok]
        new[ok, 1] = sy[ok] / ws[ok]
        if np.allclose(new, centres, atol=0.5):
            break
        centres = new
        labels = _nearest(centres, geoms)
    return labels


def _compact(labels: np.ndarray) -> np.ndarray:
    _, inv = np.unique(labels, return_inverse=True)
    return inv.ravel().astype(np.int64)


def _partition(
    pos: np.ndarray,
    pairs: np.ndarray,
    w: np.ndarray,
    k: int,
    rng: np.random.Generator,
    weights: np.ndarray,
    lo: int,
    hi: int,
) -> np.ndarray:
    """Groups nodes by nearest (k-means) seed, then makes the groups connected and balanced."""
    nbrs = _neighbours(len(pos), pairs, w)
    labels = _kmeans(pos, k, rng, weights)
    labels = _make_contiguous(labels, nbrs, weights)
    labels = _balance(labels, nbrs, pos, lo, hi)
    labels = _make_contiguous(labels, nbrs, weights)
    return _compact(labels)


# ---------------------------------------------------------------------------------------------
# Town outline and the tiling (grids → communities → streets → county)
# ---------------------------------------------------------------------------------------------


def _make_outline(rng: np.random.Generator, scale: float) -> Polygon:
    s = math.sqrt(scale)
    a, b = 3000.0 * s, 2500.0 * s
    n = 256 if scale <= 4 else 720
    th = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 9):
        r += rng.uniform(0.02, 0.09) / k**0.6 * np.sin(k * th + rng.uniform(0, 2 * math.pi))
    for k in range(9, 25):
        r += rng.uniform(0.0, 0.01) * np.sin(k * th + rng.uniform(0, 2 * math.pi))
    rot = rng.uniform(-0.3, 0.3)
    x0, y0 = a * r * np.cos(th), b * r * np.sin(th)
    x = x0 * math.cos(rot) - y0 * math.sin(rot)
    y = x0 * math.sin(rot) + y0 * math.cos(rot)
    poly = Polygon(np.column_stack([x, y]))
    f = math.sqrt(math.pi * a * b / poly.area)
    poly = Polygon(np.column_stack([x * f, y * f]))
    if not poly.is_valid:
        raise _Retry("outline invalid")
    return poly


def _grid_seeds(rng: np.random.Generator, outline: Polygon, n_target: int) -> np.ndarray:
    """Jittered hexagonal lattice inside the outline, ~n_target points."""
    d = math.sqrt(2 * outline.area / (math.sqrt(3) * n_target))
    pts = np.empty((0, 2))
    xmin, ymin, xmax, ymax = outline.bounds
    for _ in range(3):
        inner = outline.buffer(-0.3 * d)
        shapely.prepare(inner)
        h = d * math.sqrt(3) / 2
        ox, oy = rng.uniform(0, d), rng.uniform(0, h)
        ys = np.arange(ymin - d + oy, ymax + d, h)
        xs = np.arange(xmin - d + ox, xmax + d, d)
        gx, gy = np.meshgrid(xs, ys)
        gx = gx + (np.arange(len(ys)) % 2)[:, None] * d / 2
        cand = np.column_stack([gx.ravel(), gy.ravel()])
        rad = 0.3 * d * np.sqrt(rng.random(len(cand)))
        ang = rng.uniform(0, 2 * math.pi, len(cand))
        cand = cand + np.column_stack([rad * np.cos(ang), rad * np.sin(ang)])
        pts = cand[shapely.contains_xy(inner, cand[:, 0], cand[:, 1])]
        if abs(len(pts) - n_target) <= max(2, 0.02 * n_target):
            break
        d *= math.sqrt(len(pts) / n_target)
    if len(pts) < 4:
        raise _Retry("too few seeds")
    return pts


@dataclass
class _Tiling:
    grids: list[Polygon]  # lon/lat, rounded
    grid_xy: np.ndarray  # centroids in metres
    grid_area: np.ndarray  # m²
    grid_comm: np.ndarray
    comm_street: np.ndarray
    comms: list[Polygon | MultiPolygon]
    streets: list[Polygon | MultiPolygon]
    county: Polygon | MultiPolygon
    comm_xy: np.ndarray
    street_xy: np.ndarray
    grid_pairs: np.ndarray
    grid_pair_w: np.ndarray


def _union(parts: Sequence[BaseGeometry]) -> BaseGeometry:
    if len(parts) == 1:
        return parts[0]
    return shapely.coverage_union_all(list(parts))


def _make_tiling(rng: np.random.Generator, outline: Polygon, scale: float) -> _Tiling:
    n_streets = max(4, round(4 * scale))
    n_comms = max(2 * n_streets, round(24 * scale))
    n_grids = max(4 * n_comms, round(300 * scale))
    seeds = _grid_seeds(rng, outline, n_grids)

    # Voronoi edges + outline, noded together once, then polygonised: every shared vertex is
    # computed exactly once, so neighbouring faces share identical coordinates.
    env = shapely.box(*outline.buffer(outline.length / 20).bounds)
    edges = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=env, only_edges=True)
    noded = shapely.union_all([edges, outline.exterior])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    reps = shapely.point_on_surface(faces)
    inside = shapely.contains_xy(outline, shapely.get_x(reps), shapely.get_y(reps))
    faces, reps = faces[inside], reps[inside]
    face_seed = _nearest(seeds, reps)
    faces_ll = to_lonlat(faces)
    if not shapely.is_valid(faces_ll).all() or shapely.is_empty(faces_ll).any():
        raise _Retry("face invalid after rounding")
    face_area = shapely.area(faces)
    f_pairs, f_w = _shared_edges(faces_ll)
    face_grid = _make_contiguous(face_seed, _neighbours(len(faces), f_pairs, f_w), face_area)
    face_grid = _compact(face_grid)
    n_g = int(face_grid.max()) + 1
    grids: list[Polygon] = []
    for nodes in (v for _, v in sorted(_groups(face_grid).items())):
        g = _union([faces_ll[i] for i in nodes])
        if not isinstance(g, Polygon):
            raise _Retry("grid not a single polygon")
        grids.append(g)
    grid_arr = np.array(grids, dtype=object)
    g_pairs, g_w = _label_pairs(f_pairs, f_w, face_grid, n_g)
    grid_m = to_metres(grid_arr)
    grid_xy = shapely.get_coordinates(shapely.centroid(grid_m))
    grid_area = shapely.area(grid_m)

    # communities: nearest community seed (k-means on grid centroids), contiguous, 8–20 grids
    avg = n_g / n_comms
    lo = max(1, round(avg * 0.72))
    hi = max(lo + 2, math.floor(avg * 1.4))
    grid_comm = _partition(grid_xy, g_pairs, g_w, n_comms, rng, np.ones(n_g), lo, hi)
    n_c = int(grid_comm.max()) + 1
    comm_size = np.bincount(grid_comm, minlength=n_c).astype(float)
    comm_xy = (
        np.column_stack(
            [
                np.bincount(grid_comm, weights=grid_area * grid_xy[:, 0], minlength=n_c),
                np.bincount(grid_comm, weights=grid_area * grid_xy[:, 1], minlength=n_c),
            ]
        )
        / np.bincount(grid_comm, weights=grid_area, minlength=n_c)[:, None]
    )
    c_pairs, c_w = _label_pairs(g_pairs, g_w, grid_comm, n_c)

    # streets: nearest street seed on community centroids, contiguous
    avg_s = n_c / n_streets
    lo_s = max(1, round(avg_s * 0.7))
    hi_s = max(lo_s + 1, math.ceil(avg_s * 1.35))
    comm_street = _partition(comm_xy, c_pairs, c_w, n_streets, rng, comm_size, lo_s, hi_s)
    n_s = int(comm_street.max()) + 1
    street_xy = (
        np.column_stack(
            [
                np.bincount(comm_street, weights=comm_size * comm_xy[:, 0], minlength=n_s),
                np.bincount(comm_street, weights=comm_size * comm_xy[:, 1], minlength=n_s),
            ]
        )
        / np.bincount(comm_street, weights=comm_size, minlength=n_s)[:, None]
    )

    comms = [_union([grids[i] for i in v]) for _, v in sorted(_groups(grid_comm).items())]
    streets = [_union([comms[i] for i in v]) for _, v in sorted(_groups(comm_street).items())]
    county = _union(streets)
    return _Tiling(
        grids=grids,
        grid_xy=grid_xy,
        grid_area=grid_area,
        grid_comm=grid_comm,
        comm_street=comm_street,
        comms=comms,
        streets=streets,
        county=county,
        comm_xy=comm_xy,
        street_xy=street_xy,
        grid_pairs=g_pairs,
        grid_pair_w=g_w,
    )


def _multi(g: BaseGeometry) -> MultiPolygon:
    if isinstance(g, MultiPolygon):
        return g
    return MultiPolygon([g])


def _street_names(rng: np.random.Generator, xy: np.ndarray, radius: float) -> list[str]:
    n = len(xy)
    names: list[str | None] = [None] * n
    r = np.hypot(xy[:, 0], xy[:, 1])
    ang = np.degrees(np.arctan2(xy[:, 1], xy[:, 0]))
    if n >= 5:
        c = int(np.argmin(r))
        if r[c] < 0.35 * radius:
            names[c] = "城中街道"
    dirs = {"城东": 0.0, "城北": 90.0, "城西": 180.0, "城南": -90.0}
    eligible = [i for i in range(n) if names[i] is None and (n <= 6 or r[i] < 0.6 * radius)]
    cands = []
    for i in eligible:
        for d, da in dirs.items():
            diff = abs((ang[i] - da + 180.0) % 360.0 - 180.0)
            cands.append((diff, i, d))
    used_dirs: set[str] = set()
    for diff, i, d in sorted(cands):
        if diff > 55.0:
            break
        if names[i] is None and d not in used_dirs:
            names[i] = d + "街道"
            used_dirs.add(d)
    used = {x for x in names if x}
    pool = _Names(rng, _STREET_STEMS, used)
    for i in range(n):
        if names[i] is None:
            suffix = "镇" if n > 6 and r[i] >= 0.7 * radius else "街道"
            names[i] = pool.take(lambda s, suffix=suffix: s + suffix)[1]
    return [x for x in names if x]


# ---------------------------------------------------------------------------------------------
# Roads, markets, compounds (built in metres)
# ---------------------------------------------------------------------------------------------


class _Bins:
    """A tiny dynamic spatial index (uniform buckets) for incremental placement checks."""

    def __init__(self, cell: float) -> None:
        self.cell = cell
        self.bins: dict[tuple[int, int], list[int]] = {}
        self.geoms: list[BaseGeometry] = []

    def _keys(self, bounds: Sequence[float]) -> Iterator[tuple[int, int]]:
        x0, y0, x1, y1 = (math.floor(v / self.cell) for v in bounds)
        for i in range(x0, x1 + 1):
            for j in range(y0, y1 + 1):
                yield i, j

    def add(self, geom: BaseGeometry) -> int:
        idx = len(self.geoms)
        self.geoms.append(geom)
        for k in self._keys(geom.bounds):
            self.bins.setdefault(k, []).append(idx)
        return idx

    def query(self, geom: BaseGeometry) -> list[int]:
        out: set[int] = set()
        for k in self._keys(geom.bounds):
            out.update(self.bins.get(k, ()))
        return sorted(out)


@dataclass
class _Road:
    name: str
    stem: str
    grade: str
    line: LineString  # metres
    lanes: int = 0  # lanes numbered after this road ("人民路二巷")


class _LineSampler:
    """Uniform points (with tangents) along a set of lines, weighted per line."""

    def __init__(self, lines: Sequence[LineString], weight: Sequence[float]) -> None:
        a_list, b_list, owner = [], [], []
        for i, ln in enumerate(lines):
            c = np.asarray(ln.coords)
            a_list.append(c[:-1])
            b_list.append(c[1:])
            owner.append(np.full(len(c) - 1, i))
        self.a = np.concatenate(a_list)
        self.b = np.concatenate(b_list)
        self.owner = np.concatenate(owner)
        d = self.b - self.a
        self.length = np.hypot(d[:, 0], d[:, 1])
        ok = self.length > 0
        self.a, self.b, self.owner, self.length = (
            self.a[ok],
            self.b[ok],
            self.owner[ok],
            self.length[ok],
        )
        self.tangent = (self.b - self.a) / self.length[:, None]
        self.cum = np.cumsum(self.length * np.asarray(weight, dtype=float)[self.owner])

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        seg = np.searchsorted(self.cum, rng.random(n) * self.cum[-1], side="right")
        seg = np.minimum(seg, len(self.cum) - 1)
        t = rng.random(n)[:, None]
        pts = self.a[seg] + t * (self.b[seg] - self.a[seg])
        return pts, self.tangent[seg], self.owner[seg]


def _longest_part(geom: BaseGeometry) -> LineString | None:
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, LineString) and not p.is_empty]
    if not parts:
        return None
    return max(parts, key=lambda p: p.length)


def _road_name(stem: str, suffix: str, direction: str) -> str:
    if not direction:
        return stem + suffix
    if suffix == "大道":
        return f"{stem}大道{direction}段"
    return stem + direction + suffix


class _Town:
    """Mutable state while placing roads, markets and compounds (all in metres)."""

    def __init__(self, rng: np.random.Generator, outline: Polygon, scale: float) -> None:
        self.rng = rng
        self.scale = scale
        self.outline = outline
        self.clip = outline.buffer(-1.0)
        self.inner = outline.buffer(-6.0)
        shapely.prepare(self.clip)
        shapely.prepare(self.inner)
        self.radius = math.sqrt(outline.area / math.pi)
        theta0 = rng.uniform(-0.25, 0.25)
        self.fam_angles = (theta0, theta0 + math.pi / 2 + rng.uniform(-0.08, 0.08))
        self.roads: list[_Road] = []
        self.road_bins = _Bins(500.0)
        self.used_road_names: set[str] = set()
        self.road_names = _Names(rng, _MAIN_STEMS + _SECONDARY_STEMS, self.used_road_names)
        self.lane_names = _Names(rng, _LANE_STEMS, self.used_road_names)
        self.cores = np.zeros((1, 2))
        # name stem of the community around a point (set by the builder), for lane names
        self.neighbourhood: Callable[[tuple[float, float]], str] = lambda xy: "新"
        self.hood_lanes: dict[str, int] = {}

    def core_weight(self, xy: np.ndarray) -> np.ndarray:
        """1 in the old town cores, → 0 far away (old compounds, lanes, markets cluster)."""
        d2 = ((xy[:, None, :] - self.cores[None, :, :]) ** 2).sum(axis=2).min(axis=1)
        return np.exp(-d2 / (1400.0**2))

    def random_inside(self, n: int) -> np.ndarray:
        xmin, ymin, xmax, ymax = self.outline.bounds
        out = np.empty((0, 2))
        while len(out) < n:
            c = self.rng.uniform((xmin, ymin), (xmax, ymax), size=(2 * n + 8, 2))
            out = np.concatenate([out, c[shapely.contains_xy(self.inner, c[:, 0], c[:, 1])]])
        return out[:n]

    def add_road(self, road: _Road) -> None:
        self.roads.append(road)
        self.road_bins.add(road.line)

    # -- 主干道 --------------------------------------------------------------------------------
    def main_roads(self, spacing: float = 1600.0, max_section: float = 5000.0) -> None:
        rng = self.rng
        coords = np.asarray(self.outline.exterior.coords)
        for fam, ang in enumerate(self.fam_angles):
            u = np.array([math.cos(ang), math.sin(ang)])
            v = np.array([-math.sin(ang), math.cos(ang)])
            pv, pu = coords @ v, coords @ u
            span = pv.max() - pv.min()
            n_lines = max(1, round(span / spacing))
            gap = span / n_lines
            for i in range(n_lines):
                c = pv.min() + (i + 0.5 + rng.uniform(-0.2, 0.2)) * gap
                t = np.arange(pu.min() - 100.0, pu.max() + 100.0, 50.0)
                amp1, amp2 = rng.uniform(40, 160), rng.uniform(5, 35)
                wl1, wl2 = rng.uniform(2500, 6000), rng.uniform(700, 1500)
                ph1, ph2 = rng.uniform(0, 2 * math.pi, 2)
                off = (
                    c
                    + amp1 * np.sin(2 * math.pi * t / wl1 + ph1)
                    + amp2 * np.sin(2 * math.pi * t / wl2 + ph2)
                )
                line = LineString(np.outer(t, u) + np.outer(off, v))
                parts = [
                    p
                    for p in shapely.get_parts(shapely.intersection(line, self.clip))
                    if isinstance(p, LineString) and p.length >= 500.0
                ]
                parts.sort(key=lambda p: float(np.asarray(p.centroid.coords[0]) @ u))
                sections: list[LineString] = []
                for p in parts:
                    if float(np.asarray(p.coords[-1]) @ u) < float(np.asarray(p.coords[0]) @ u):
                        p = p.reverse()
                    k = max(1, math.ceil(p.length / max_section))
                    sections += [
                        substring(p, j / k, (j + 1) / k, normalized=True) for j in range(k)
                    ]
                if not sections:
                    continue
                n_chunks = math.ceil(len(sections) / 3)
                for chunk in np.array_split(np.arange(len(sections)), n_chunks):
                    suffix = _pick(rng, ("路", "大道", "街"), (0.72, 0.18, 0.10))
                    if len(chunk) == 1:
                        dirs = ("",)
                    elif len(chunk) == 2:
                        dirs = ("西", "东") if fam == 0 else ("南", "北")
                    else:
                        dirs = ("西", "中", "东") if fam == 0 else ("南", "中", "北")
                    stem, _ = self.road_names.take(
                        lambda s, suffix=suffix, dirs=dirs: _road_name(s, suffix, dirs[0])
                    )
                    for j, d in zip(chunk.tolist(), dirs, strict=True):
                        name = _road_name(stem, suffix, d)
                        self.used_road_names.add(name)
                        self.add_road(_Road(name, stem, ROAD_GRADES[0], sections[j]))

    def _parallel_conflict(
        self, line: LineString, dist: float, frac: float, skip: int = -1
    ) -> bool:
        """Whether `line` runs alongside an existing road within `dist` metres for more than
        `frac` of the shorter one (frac < 1) or more than `frac` metres (frac >= 1)."""
        buf = line.buffer(dist)
        cands = [i for i in self.road_bins.query(buf) if i != skip]
        if not cands:
            return False
        others = np.array([self.roads[i].line for i in cands], dtype=object)
        overlap = shapely.length(shapely.intersection(others, buf))
        limit = frac * np.minimum(shapely.length(others), line.length) if frac < 1 else frac
        return bool((overlap > limit).any())

    # -- 次干道 --------------------------------------------------------------------------------
    def secondary_roads(self, n: int) -> None:
        rng = self.rng
        made = 0
        for _ in range(60 * n + 50):
            if made >= n:
                break
            centre = self.random_inside(1)[0]
            fam = int(rng.integers(2))
            ang = self.fam_angles[fam] + rng.normal(0.0, 0.07)
            u = np.array([math.cos(ang), math.sin(ang)])
            v = np.array([-math.sin(ang), math.cos(ang)])
            length = rng.uniform(800, 2000)
            t = np.linspace(-length / 2, length / 2, 25)
            off = rng.uniform(-50, 50) * np.sin(math.pi * t / length * rng.uniform(0.6, 1.6))
            line = LineString(centre + np.outer(t, u) + np.outer(off, v))
            part = _longest_part(shapely.intersection(line, self.clip))
            if part is None or part.length < 400.0:
                continue
            if self._parallel_conflict(part, 160.0, 0.25):
                continue
            suffix = _pick(rng, ("路", "街"), (0.78, 0.22))
            stem, name = self.road_names.take(lambda s, suffix=suffix: s + suffix)
            self.add_road(_Road(name, stem, ROAD_GRADES[1], part))
            made += 1

    # -- 背街小巷 ------------------------------------------------------------------------------
    def lanes(self, n: int) -> None:
        rng = self.rng
        trunk = [i for i, r in enumerate(self.roads) if r.grade != ROAD_GRADES[2]]
        sampler = _LineSampler([self.roads[i].line for i in trunk], [1.0] * len(trunk))
        made = 0
        for _ in range(60 * n + 50):
            if made >= n:
                break
            pts, tan, own = sampler.sample(rng, 1)
            p, tg = pts[0], tan[0]
            if rng.random() > 0.25 + 0.75 * float(self.core_weight(pts)[0]):
                continue
            anchor = trunk[int(own[0])]
            side = 1.0 if rng.random() < 0.5 else -1.0
            nrm = side * np.array([-tg[1], tg[0]])
            l1 = rng.uniform(100, 330)
            mid = p + nrm * l1 * 0.5 + tg * rng.normal(0, 4)
            coords = [p, mid, p + nrm * l1]
            if rng.random() < 0.4:
                turn = 1.0 if rng.random() < 0.5 else -1.0
                coords.append(coords[-1] + tg * turn * rng.uniform(50, 180))
            part = _longest_part(shapely.intersection(LineString(coords), self.clip))
            if part is None or part.length < 80.0:
                continue
            if self._parallel_conflict(part, 30.0, 40.0, skip=anchor):
                continue
            road = self.roads[anchor]
            got = None
            if rng.random() < 0.6:  # the pool marks its names as used itself
                suffix = _pick(rng, ("巷", "弄", "里"), (0.6, 0.25, 0.15))
                got = self.lane_names.try_take(lambda s, suffix=suffix: s + suffix)
            if got is None:
                if road.name.endswith(("路", "街")) and road.lanes < 30:
                    road.lanes += 1  # numbered after the road it leaves: 人民路二巷
                    got = road.stem, f"{road.name}{_cn_number(road.lanes)}巷"
                else:  # numbered after the neighbourhood: 幸福三巷
                    hood = self.neighbourhood(part.centroid.coords[0])
                    self.hood_lanes[hood] = self.hood_lanes.get(hood, 0) + 1
                    got = hood, f"{hood}{_cn_number(self.hood_lanes[hood])}巷"
                if got[1] in self.used_road_names:
                    continue
                self.used_road_names.add(got[1])
            stem, name = got
            self.add_road(_Road(name, stem, ROAD_GRADES[2], part))
            made += 1


def _rect(cx: float, cy: float, a: float, b: float, ang: float) -> Polygon:
    ca, sa = math.cos(ang), math.sin(ang)
    ux, uy = ca * a / 2, sa * a / 2
    vx, vy = -sa * b / 2, ca * b / 2
    return Polygon(
        [
            (cx - ux - vx, cy - uy - vy),
            (cx + ux - vx, cy + uy - vy),
            (cx + ux + vx, cy + uy + vy),
            (cx - ux + vx, cy - uy + vy),
        ]
    )


@dataclass
class _Market:
    rect: Polygon  # metres
    centre: tuple[float, float]
    angle: float
    a: float
    b: float
    road: int
    is_point: bool = False


@dataclass
class _Compound:
    rect: Polygon
    centre: tuple[float, float]
    angle: float
    a: float
    b: float
    grid: int
    ctype: str


def _place_markets(town: _Town, n: int) -> list[_Market]:
    rng = town.rng
    trunk = [i for i, r in enumerate(town.roads) if r.grade != ROAD_GRADES[2]]
    sampler = _LineSampler([town.roads[i].line for i in trunk], [1.0] * len(trunk))
    markets: list[_Market] = []
    bins = _Bins(500.0)
    for _ in range(200 * n + 50):
        if len(markets) >= n:
            break
        pts, tan, own = sampler.sample(rng, 1)
        if rng.random() > 0.35 + 0.65 * float(town.core_weight(pts)[0]):
            continue
        p, tg = pts[0], tan[0]
        a, b = rng.uniform(40, 120), rng.uniform(40, 120)
        side = 1.0 if rng.random() < 0.5 else -1.0
        nrm = side * np.array([-tg[1], tg[0]])
        c = p + nrm * (b / 2 + rng.uniform(8, 20))
        ang = math.atan2(tg[1], tg[0])
        rect = _rect(float(c[0]), float(c[1]), a, b, ang)
        if not town.inner.contains(rect):
            continue
        near = rect.buffer(3.0)
        if any(town.roads[i].line.intersects(near) for i in town.road_bins.query(near)):
            continue
        far = rect.buffer(350.0)
        if any(bins.geoms[i].intersects(far) for i in bins.query(far)):
            continue
        bins.add(rect)
        markets.append(_Market(rect, (float(c[0]), float(c[1])), ang, a, b, trunk[int(own[0])]))
    if n >= 6:
        k = max(1, round(0.15 * len(markets)))
        for i in sorted(rng.choice(len(markets), size=k, replace=False).tolist()):
            markets[i].is_point = True
    return markets


def _compound_type(rng: np.random.Generator, core: float, rim: float) -> str:
    p_old = 0.12 + 0.6 * core
    p_village = 0.05 + (0.35 if rim > 0.72 else 0.0)
    p_new = max(0.05, 1.0 - p_old - p_village)
    return _pick(rng, COMPOUND_TYPES, (p_new, p_old, p_village))


def _place_compounds(
    town: _Town, n: int, grids_m: np.ndarray, markets: list[_Market]
) -> list[_Compound]:
    rng = town.rng
    areas = shapely.area(grids_m)
    p = areas / areas.sum()
    cum = np.cumsum(p)
    market_bins = _Bins(500.0)
    for m in markets:
        market_bins.add(m.rect)
    trunk_bins = _Bins(500.0)
    for r in town.roads:
        if r.grade != ROAD_GRADES[2]:
            trunk_bins.add(r.line)
    inner_cache: dict[int, BaseGeometry] = {}
    per_grid: dict[int, list[Polygon]] = {}
    out: list[_Compound] = []
    for _ in range(40 * n + 50):
        if len(out) >= n:
            break
        g = min(int(np.searchsorted(cum, rng.random(), side="right")), len(cum) - 1)
        if len(per_grid.get(g, ())) >= 2:
            continue
        if g not in inner_cache:
            inner = grids_m[g].buffer(-4.0)
            shapely.prepare(inner)
            inner_cache[g] = inner
        inner = inner_cache[g]
        if inner.is_empty:
            continue
        if rng.random() < 0.5:
            c = np.asarray(inner.centroid.coords[0]) + rng.normal(0, 15, 2)
        else:
            x0, y0, x1, y1 = inner.bounds
            c = rng.uniform((x0, y0), (x1, y1))
        ang = town.fam_angles[int(rng.integers(2))] + rng.normal(0, 0.04)
        a = rng.uniform(80, 300)
        b = rng.uniform(80, min(a, 260))
        for f in (1.0, 0.85, 0.7, 0.55, 0.42, 0.3):
            aa, bb = max(80.0, a * f), max(80.0, b * f)
            rect = _rect(float(c[0]), float(c[1]), aa, bb, ang)
            if not inner.contains(rect):
                continue
            if any(o.intersects(rect.buffer(8.0)) for o in per_grid.get(g, ())):
                continue
            near = rect.buffer(10.0)
            if any(market_bins.geoms[i].intersects(near) for i in market_bins.query(near)):
                continue
            near = rect.buffer(6.0)
            if any(trunk_bins.geoms[i].intersects(near) for i in trunk_bins.query(near)):
                continue
            xy = np.asarray([c])
            rim = float(np.hypot(*xy[0]) / town.radius)
            ctype = _compound_type(rng, float(town.core_weight(xy)[0]), rim)
            out.append(_Compound(rect, (float(c[0]), float(c[1])), ang, aa, bb, g, ctype))
            per_grid.setdefault(g, []).append(rect)
            break
    return out


# ---------------------------------------------------------------------------------------------
# Units and leaders
# ---------------------------------------------------------------------------------------------

# (unit, head title, deputy title, lead unit?)
_DEPARTMENTS: tuple[tuple[str, str, str, bool], ...] = (
    ("县文明办", "文明办主任", "文明办副主任", True),
    ("县城管局", "城管局局长", "城管局副局长", True),
    ("县住建局", "住建局局长", "住建局副局长", False),
    ("县公安局交警大队", "交警大队大队长", "交警大队副大队长", False),
    ("县市场监管局", "市场监管局局长", "市场监管局副局长", False),
    ("县交通运输局", "交通运输局局长", "交通运输局副局长", False),
    ("县生态环境局", "生态环境局局长", "生态环境局副局长", False),
    ("县卫健委", "卫健委主任", "卫健委副主任", False),
    ("县教育局", "教育局局长", "教育局副局长", False),
    ("县商务局", "商务局局长", "商务局副局长", False),
    ("县民政局", "民政局局长", "民政局副局长", False),
    ("县自然资源和规划局", "自然资源和规划局局长", "自然资源和规划局副局长", False),
    ("县文广旅局", "文广旅局局长", "文广旅局副局长", False),
    ("县水务局", "水务局局长", "水务局副局长", False),
)
_CITY_UNIT = "市文明办"
_COUNTY_GOV_UNIT = "县政府办公室"
_CITY_TITLES = ("市人大常委会副主任", "市政协副主席", "副市长", "市委常委、宣传部部长")
_COUNTY_TITLES = (
    "县委副书记",
    "副县长",
    "县委常委、宣传部部长",
    "副县长",
    "县人大常委会副主任",
    "县政协副主席",
    "县委常委、常务副县长",
    "县委常委、政法委书记",
)


@dataclass
class _LeaderMeta:
    group: str  # city | county | dept | street | community
    street: int = -1
    community: int = -1


class _People:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        w = 1.0 / (np.arange(len(_SURNAMES)) + 8.0)
        self.sur_cum = np.cumsum(w / w.sum())
        self.names: set[str] = set()
        self.phones: set[str] = set()

    def name(self) -> str:
        rng = self.rng
        while True:
            s = _SURNAMES[min(int(np.searchsorted(self.sur_cum, rng.random())), len(_SURNAMES) - 1)]
            k = 1 if rng.random() < 0.3 else 2
            chars = _GIVEN_MALE if rng.random() < 0.62 else _GIVEN_FEMALE
            given = "".join(chars[int(i)] for i in rng.integers(len(chars), size=k))
            if s + given not in self.names:
                self.names.add(s + given)
                return s + given

    def phone(self) -> str:
        rng = self.rng
        while True:
            p = _PHONE_PREFIXES[int(rng.integers(len(_PHONE_PREFIXES)))]
            p += "".join(str(int(d)) for d in rng.integers(10, size=8))
            if p not in self.phones:
                self.phones.add(p)
                return p


def _make_people(
    rng: np.random.Generator,
    scale: float,
    streets: list[DemoArea],
    comms: list[DemoArea],
    comm_street: np.ndarray,
) -> tuple[list[DemoUnit], list[DemoLeader], list[_LeaderMeta]]:
    units = [DemoUnit(name, lead) for name, _, _, lead in _DEPARTMENTS]
    units += [DemoUnit(_COUNTY_GOV_UNIT, False), DemoUnit(_CITY_UNIT, False)]
    units += [DemoUnit(s.name + "办事处", False) for s in streets]
    people = _People(rng)
    leaders: list[DemoLeader] = []
    meta: list[_LeaderMeta] = []

    def add(title: str, unit: str, level: str, m: _LeaderMeta) -> None:
        leaders.append(DemoLeader(len(leaders), people.name(), title, unit, people.phone(), level))
        meta.append(m)

    s = math.sqrt(scale)
    for i in range(max(1, round(2 * s))):
        add(_CITY_TITLES[i % len(_CITY_TITLES)], _CITY_UNIT, LEADER_LEVELS[0], _LeaderMeta("city"))
    for i in range(max(3, round(6 * s))):
        title = _COUNTY_TITLES[i % len(_COUNTY_TITLES)]
        unit = "县文明办" if "宣传部" in title else _COUNTY_GOV_UNIT
        add(title, unit, LEADER_LEVELS[1], _LeaderMeta("county"))
    for unit, head, _, _ in _DEPARTMENTS:
        add(head, unit, LEADER_LEVELS[1], _LeaderMeta("dept"))
    for i in range(round(2 * max(0.0, scale - 1))):
        unit, _, deputy, _ = _DEPARTMENTS[i % len(_DEPARTMENTS)]
        add(deputy, unit, LEADER_LEVELS[1], _LeaderMeta("dept"))
    for si, st in enumerate(streets):
        unit = st.name + "办事处"
        if st.name.endswith("镇"):
            titles = (st.name + "党委书记", st.name + "镇长")
        else:
            titles = (st.name + "党工委书记", st.name + "办事处主任")
        for t in titles:
            add(t, unit, LEADER_LEVELS[2], _LeaderMeta("street", street=si))
    for ci, cm in enumerate(comms):
        unit = streets[int(comm_street[ci])].name + "办事处"
        m = _LeaderMeta("community", street=int(comm_street[ci]), community=ci)
        add(cm.name + "党委书记", unit, LEADER_LEVELS[3], m)
    extra = rng.choice(len(comms), size=max(1, round(len(comms) / 4)), replace=False)
    for ci in sorted(extra.tolist()):
        unit = streets[int(comm_street[ci])].name + "办事处"
        m = _LeaderMeta("community", street=int(comm_street[ci]), community=ci)
        add(comms[ci].name + "居委会主任", unit, LEADER_LEVELS[3], m)
    return units, leaders, meta


# ---------------------------------------------------------------------------------------------
# Assignments
# ---------------------------------------------------------------------------------------------


@dataclass
class _FeatureRef:
    layer: str
    code: str
    street: int
    community: int
    kind: str  # road grade / compound type / ""


class _Cycle:
    """Round-robin over a shuffled pool of leader keys, so work is spread evenly."""

    def __init__(self, rng: np.random.Generator, items: Sequence[int]) -> None:
        self.items = list(items)
        rng.shuffle(self.items)
        self.pos = 0

    def next(self, avoid: int = -1) -> int:
        """The next key, skipping `avoid` once (returns it only if the pool has nothing else)."""
        x = self.items[self.pos % len(self.items)]
        self.pos += 1
        if x == avoid and len(self.items) > 1:
            x = self.items[self.pos % len(self.items)]
            self.pos += 1
        return x


def _at9(d: date) -> datetime:
    return datetime.combine(d, time(9, 0), TZ)


def _make_assignments(
    rng: np.random.Generator,
    today: date,
    refs: dict[str, list[_FeatureRef]],
    meta: list[_LeaderMeta],
    n_streets: int,
    n_comms: int,
) -> list[DemoAssignment]:
    # Idle leaders: two department heads answer for no place at all.
    depts = [k for k, m in enumerate(meta) if m.group == "dept"]
    idle = set(rng.choice(depts, size=2, replace=False).tolist())
    active = [k for k in range(len(meta)) if k not in idle]
    top = _Cycle(rng, [k for k in active if meta[k].group in ("city", "county")])
    dept = _Cycle(rng, [k for k in active if meta[k].group == "dept"])
    street_l: list[list[int]] = [[] for _ in range(n_streets)]
    comm_l: list[list[int]] = [[] for _ in range(n_comms)]
    for k in active:
        if meta[k].group == "street":
            street_l[meta[k].street].append(k)
        elif meta[k].group == "community":
            comm_l[meta[k].community].append(k)
    street_c = [_Cycle(rng, v) for v in street_l]
    comm_c = [_Cycle(rng, v) for v in comm_l]

    def primary(f: _FeatureRef) -> tuple[str, _Cycle]:
        if f.layer == "road":
            if f.kind == ROAD_GRADES[0]:
                return "道路长", top
            if f.kind == ROAD_GRADES[1]:
                return "道路长", dept
            return "道路长", street_c[f.street]
        if f.layer == "grid":
            return "网格长", comm_c[f.community]
        if f.layer == "market":
            return "点长", street_c[f.street]
        if rng.random() < 0.55:
            return "包保责任人", dept if rng.random() < 0.5 else street_c[f.street]
        return "楼栋长", comm_c[f.community]

    def secondary(f: _FeatureRef, role: str) -> tuple[float, str, _Cycle]:
        if f.layer == "road":
            if f.kind == ROAD_GRADES[0]:
                return 0.5, "包保责任人", dept
            if f.kind == ROAD_GRADES[1]:
                return 0.3, "联点领导", top
            return 0.25, "包保责任人", comm_c[f.community]
        if f.layer == "grid":
            if len(comm_l[f.community]) > 1:
                return 0.25, "网格员", comm_c[f.community]
            return 0.25, "包保责任人", street_c[f.street]
        if f.layer == "market":
            return 0.6, "联点领导", top
        if role == "楼栋长":
            return 0.35, "包保责任人", street_c[f.street]
        return 0.35, "楼栋长", comm_c[f.community]

    out: list[DemoAssignment] = []
    has_second: set[tuple[str, str]] = set()
    covered: list[tuple[_FeatureRef, int]] = []
    for layer in ("grid", "road", "market", "compound"):
        feats = refs.get(layer, [])
        if not feats:
            continue
        n_gap = max(1, round(0.03 * len(feats)))
        gaps = set(rng.choice(len(feats), size=min(n_gap, len(feats)), replace=False).tolist())
        layer_start = today - timedelta(days=int(rng.integers(150, 172)))
        for i, f in enumerate(feats):
            if i in gaps:
                continue
            role, pool = primary(f)
            leader = pool.next()
            start = _at9(layer_start + timedelta(days=int(rng.integers(0, 8))))
            if rng.random() < 0.05:
                old = pool.next(avoid=leader)
                if old == leader:
                    old = top.next(avoid=leader)
                switch = _at9(today - timedelta(days=int(rng.integers(7, 100))))
                out.append(DemoAssignment(old, layer, f.code, role, True, start, switch))
                out.append(DemoAssignment(leader, layer, f.code, role, True, switch, None))
            else:
                out.append(DemoAssignment(leader, layer, f.code, role, True, start, None))
            covered.append((f, leader))
            p, role2, pool2 = secondary(f, role)
            if rng.random() < p and pool2.items:
                second = pool2.next(avoid=leader)
                if second != leader:
                    since = start + timedelta(days=int(rng.integers(0, 30)))
                    out.append(DemoAssignment(second, layer, f.code, role2, False, since, None))
                    has_second.add((layer, f.code))
    # Every active leader answers for something: give the unused ones a 联点/包保 role.
    used = {a.leader_key for a in out}
    extra_role = {"road": "联点领导", "market": "联点领导", "grid": "包保责任人"}
    free = [(f, ld) for f, ld in covered if (f.layer, f.code) not in has_second]
    order = rng.permutation(len(free)).tolist()
    for k in active:
        if k in used or not order:
            continue
        f, _leader = free[order.pop()]
        role = extra_role.get(f.layer, "包保责任人")
        since = _at9(today - timedelta(days=int(rng.integers(20, 120))))
        out.append(DemoAssignment(k, f.layer, f.code, role, False, since, None))
        has_second.add((f.layer, f.code))
    return out


# ---------------------------------------------------------------------------------------------
# Issues
# ---------------------------------------------------------------------------------------------

_CATEGORIES = tuple(CATEGORY_DEADLINE_HOURS)
_CAT_HOURS = np.array([CATEGORY_DEADLINE_HOURS[c] for c in _CATEGORIES], dtype=np.int64)
# Category mix by location class (order of CATEGORY_DEADLINE_HOURS).
_CAT_WEIGHTS = {
    #         环境 垃圾 道路 违停 交通 乱贴 飞线 违建 占道 设施 公益 工地 绿化 其他
    "road": (18, 8, 12, 14, 4, 8, 4, 2, 10, 8, 5, 2, 5, 2),
    "cross": (8, 4, 6, 20, 30, 4, 2, 0, 10, 8, 4, 0, 2, 2),
    "market": (30, 18, 3, 10, 2, 6, 4, 3, 20, 2, 2, 0, 0, 2),
    "compound": (22, 16, 3, 10, 0, 10, 12, 10, 2, 6, 3, 0, 5, 1),
    "area": (20, 8, 4, 6, 2, 6, 3, 5, 4, 10, 6, 15, 8, 3),
}
_CLASSES = ("road", "cross", "market", "compound", "area")
_CLASS_P = (0.40, 0.10, 0.12, 0.25, 0.13)
_SOURCE_P = (20, 10, 5, 14, 10, 14, 20, 7)
_SEVERITY_KEYS = tuple(sorted(SEVERITIES))
_SEVERITY_P = (0.72, 0.23, 0.05)

_PHRASES: dict[str, tuple[str, ...]] = {
    "环境卫生": (
        "路面散落垃圾、烟头较多",
        "绿化带内有白色垃圾",
        "卫生死角堆积杂物",
        "果皮纸屑未及时清扫",
        "墙角积存污水，有异味",
        "公厕卫生脏乱，异味较重",
        "沿街店铺门前卫生较差",
    ),
    "垃圾外溢": (
        "垃圾桶满溢，周边散落垃圾",
        "垃圾分类亭垃圾外溢未及时清运",
        "建筑垃圾随意堆放",
        "生活垃圾袋堆放在垃圾桶外",
        "大件垃圾长期堆放未清运",
    ),
    "道路破损": (
        "人行道地砖松动破损",
        "路面坑洼积水",
        "窨井盖破损下沉",
        "盲道破损不连续",
        "路沿石缺损",
    ),
    "车辆违停": (
        "机动车占用人行道停放",
        "非机动车乱停乱放，阻塞通行",
        "共享单车堆积占道",
        "车辆停放在消防通道",
        "电动车停放无序",
    ),
    "交通秩序": (
        "行人闯红灯现象较多",
        "电动车逆向行驶",
        "电动车驾乘人员未佩戴头盔",
        "机动车不礼让行人",
        "交通标线模糊不清",
    ),
    "乱贴乱画": (
        "墙面有小广告乱贴",
        "电线杆上贴满牛皮癣广告",
        "墙体有涂鸦乱画",
        "配电箱上张贴小广告",
    ),
    "空中飞线": (
        "楼道口电线私拉乱接",
        "空中线缆杂乱下垂",
        "私拉电线飞线充电",
        "弱电线缆缠绕在树上",
    ),
    "乱搭乱建": (
        "违规搭建彩钢棚",
        "私自围占公共绿地种菜",
        "楼顶违章搭建",
        "沿街违规搭建雨棚",
    ),
    "占道经营": (
        "流动摊贩占道经营",
        "店铺出店经营，商品摆放至人行道",
        "早点摊占用人行道",
        "瓜果摊点占道摆卖",
        "夜市摊点收摊后未清理",
    ),
    "设施损坏": (
        "路灯不亮",
        "信报箱破损",
        "无障碍坡道被占用",
        "垃圾桶破损",
        "公交站牌破损",
        "健身器材损坏",
        "护栏倾斜损坏",
    ),
    "公益广告缺失": (
        "围挡公益广告缺失",
        "公益广告破损褪色",
        "宣传栏内容过期未更新",
        "核心价值观宣传牌缺失",
    ),
    "建筑工地围挡": (
        "工地围挡破损",
        "工地出入口未设置冲洗设施，车辆带泥上路",
        "裸土未覆盖，扬尘较大",
        "工地围挡未设置公益广告",
    ),
    "绿化损坏": (
        "绿化带缺株死苗",
        "树木枯死未补种",
        "绿地被踩踏裸露",
        "行道树树穴缺少盖板",
    ),
    "其他": (
        "创文宣传氛围不浓",
        "志愿服务站点无人值守",
        "文明用语标识缺失",
        "便民服务点管理不规范",
    ),
}
_PHRASE_LISTS = [_PHRASES[c] for c in _CATEGORIES]
_ROAD_PLACES = (
    "{r}",
    "{r}人行道上",
    "{r}公交站台旁",
    "{r}{n}号门前",
    "{r}沿线商铺门前",
    "{r}非机动车道",
    "{r}绿化带",
    "{r}{n}号{d}侧",
)
_CROSS_PLACES = ("{r}与{r2}交叉口{d}侧", "{r}与{r2}交叉口", "{r}与{r2}路口人行横道处")
_MARKET_PLACES = ("{m}内", "{m}入口处", "{m}周边", "{m}{d}侧通道", "{m}门前", "{m}水产区")
_COMPOUND_PLACES = (
    "{c}{n}幢{u}单元楼道",
    "{c}东门口",
    "{c}南门口",
    "{c}内部道路",
    "{c}垃圾分类投放点",
    "{c}{n}幢北侧",
    "{c}围墙外侧",
    "{c}地下车库入口",
)
_LANDMARKS = (
    "公园广场",
    "小学门口",
    "公厕",
    "建筑工地",
    "沿河绿地",
    "公共停车场",
    "商业街",
    "超市门前",
    "卫生服务站旁",
    "背街空地",
    "菜地旁",
)
_DIRS = "东南西北"
_REPORT_NOTES = {
    "暗访督查": "暗访督查发现，拍照取证上报",
    "模拟测评": "模拟测评发现问题",
    "测评反馈": "省级测评反馈问题",
    "12345热线": "12345热线转办",
    "城市啄木鸟": "市民通过城市啄木鸟平台上报",
    "随手拍": "市民随手拍上报",
    "自查": "责任单位自查发现",
    "回头看": "回头看复查发现",
}
_REJECT_NOTES = (
    "不属于创文问题范畴，不予立案",
    "重复上报，不予立案",
    "现场核实问题不存在，不予立案",
)
_ACCEPT_NOTE = "经审核符合立案条件，予以立案"
_START_NOTE = "责任单位已接单，开始整改"
_REWORK_NOTE = "复核未通过，退回重新整改"
_FIX_NOTE = "整改完成，已上传整改前后照片"
_REFIX_NOTE = "重新整改完成，再次提交复核"
_CLOSE_NOTE = "复核通过，予以销号"

# Status plans: (from, to, note-kind, time column) — columns: 0 reported, 1 accepted/rejected,
# 2 dispatched, 3 in_progress, 4 fixed, 5 verified, 6 fixed again, 7 verified, 8 fixed, 9 verified
_PLAN_REJECTED = ((None, "reported", "rep", 0), ("reported", "rejected", "rej", 1))
_PLAN_HEAD = (
    (None, "reported", "rep", 0),
    ("reported", "accepted", "acc", 1),
    ("accepted", "dispatched", "disp", 2),
    ("dispatched", "in_progress", "start", 3),
    ("in_progress", "fixed", "fix", 4),
)
_REWORK_ONCE = (
    ("fixed", "in_progress", "rework", 5),
    ("in_progress", "fixed", "refix", 6),
)
_REWORK_TWICE = (
    ("fixed", "in_progress", "rework", 7),
    ("in_progress", "fixed", "refix", 8),
)
_PLANS = (
    (*_PLAN_HEAD, ("fixed", "closed", "close", 5)),
    (*_PLAN_HEAD, *_REWORK_ONCE, ("fixed", "closed", "close", 7)),
    (*_PLAN_HEAD, *_REWORK_ONCE, *_REWORK_TWICE, ("fixed", "closed", "close", 9)),
)


class _IssueSampler:
    """Everything `DemoCounty.issues()` needs, precomputed as numpy arrays (metres)."""

    BATCH = 8192

    def __init__(
        self,
        seed: int,
        today: date,
        outline: Polygon,
        roads: list[_Road],
        markets: list[_Market],
        compounds: list[_Compound],
        compound_names: list[str],
        market_names: list[str],
        grids_m: np.ndarray,
        grid_comm_name: list[str],
    ) -> None:
        self.seed = seed
        self.start = datetime.combine(today - timedelta(days=ISSUE_WINDOW_DAYS - 1), time(0), TZ)
        self.end_s = ISSUE_WINDOW_DAYS * 86400 - 1  # last second of `today`
        self.outline = outline
        shapely.prepare(self.outline)
        self.road_names = [r.name for r in roads]
        grade_w = {ROAD_GRADES[0]: 3.0, ROAD_GRADES[1]: 2.0, ROAD_GRADES[2]: 2.5}
        self.road_lines = _LineSampler([r.line for r in roads], [grade_w[r.grade] for r in roads])
        # road crossings
        lines = np.array([r.line for r in roads], dtype=object)
        tree = shapely.STRtree(lines)
        ii, jj = tree.query(lines, predicate="intersects")
        m = ii < jj
        ii, jj = ii[m], jj[m]
        pts, idx = shapely.get_parts(shapely.intersection(lines[ii], lines[jj]), return_index=True)
        is_pt = shapely.get_type_id(pts) == 0
        self.cross_xy = shapely.get_coordinates(pts[is_pt])
        self.cross_ij = np.column_stack([ii[idx[is_pt]], jj[idx[is_pt]]])
        gw = np.array([1.0 / (1 + ROAD_GRADES.index(r.grade)) for r in roads])
        cw = gw[self.cross_ij[:, 0]] + gw[self.cross_ij[:, 1]] if len(self.cross_ij) else gw[:0]
        self.cross_cum = np.cumsum(cw)
        # markets / compounds as oriented rectangles
        self.market_names = market_names
        self.mk = np.array(
            [(*m.centre, m.angle, m.a * 1.6, m.b * 1.6) for m in markets], dtype=float
        ).reshape(-1, 5)
        self.mk_cum = np.cumsum(np.ones(len(markets)))
        self.compound_names = compound_names
        self.cp = np.array(
            [(*c.centre, c.angle, c.a, c.b) for c in compounds], dtype=float
        ).reshape(-1, 5)
        cw2 = np.array(
            [
                math.sqrt(c.a * c.b) * (3.0 if c.ctype == COMPOUND_TYPES[1] else 1.0)
                for c in compounds
            ]
        )
        self.cp_cum = np.cumsum(cw2)
        self.grids_m = grids_m
        self.grid_comm_name = grid_comm_name
        self._tri: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        p = np.array(_CLASS_P)
        p[1] *= len(self.cross_xy) > 0
        p[2] *= len(markets) > 0
        p[3] *= len(compounds) > 0
        self.class_p = p / p.sum()
        self.cat_p = [np.array(_CAT_WEIGHTS[c], float) / sum(_CAT_WEIGHTS[c]) for c in _CLASSES]

    def _triangles(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._tri is None:
            tris, owner = shapely.get_parts(
                shapely.constrained_delaunay_triangles(self.grids_m), return_index=True
            )
            coords = shapely.get_coordinates(shapely.get_exterior_ring(tris)).reshape(-1, 4, 2)
            area = shapely.area(tris)
            self._tri = (coords[:, :3, :], owner, np.cumsum(area))
        return self._tri

    def _area_points(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        tri, owner, cum = self._triangles()
        k = np.minimum(np.searchsorted(cum, rng.random(n) * cum[-1], side="right"), len(cum) - 1)
        r1 = np.sqrt(rng.random(n))[:, None]
        r2 = rng.random(n)[:, None]
        t = tri[k]
        xy = (1 - r1) * t[:, 0] + r1 * (1 - r2) * t[:, 1] + r1 * r2 * t[:, 2]
        return xy, owner[k]

    @staticmethod
    def _rect_points(rng: np.random.Generator, rects: np.ndarray, k: np.ndarray) -> np.ndarray:
        r = rects[k]
        u = rng.random(len(k)) - 0.5
        v = rng.random(len(k)) - 0.5
        ca, sa = np.cos(r[:, 2]), np.sin(r[:, 2])
        x = r[:, 0] + u * r[:, 3] * ca - v * r[:, 4] * sa
        y = r[:, 1] + u * r[:, 3] * sa + v * r[:, 4] * ca
        return np.column_stack([x, y])

    @staticmethod
    def _pick_cum(rng: np.random.Generator, cum: np.ndarray, n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(cum, rng.random(n) * cum[-1], side="right"), len(cum) - 1)

    def _locations(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
        cls = rng.choice(len(_CLASSES), size=n, p=self.class_p)
        xy = np.empty((n, 2))
        ref = np.zeros(n, dtype=np.int64)
        ref2 = np.zeros(n, dtype=np.int64)
        m = np.flatnonzero(cls == 0)
        if len(m):
            pts, tan, own = self.road_lines.sample(rng, len(m))
            off = rng.normal(0.0, 6.0, len(m))[:, None]
            xy[m] = pts + off * np.column_stack([-tan[:, 1], tan[:, 0]])
            ref[m] = own
        m = np.flatnonzero(cls == 1)
        if len(m):
            k = self._pick_cum(rng, self.cross_cum, len(m))
            xy[m] = self.cross_xy[k] + rng.normal(0.0, 12.0, (len(m), 2))
            swap = rng.random(len(m)) < 0.5
            ref[m] = np.where(swap, self.cross_ij[k, 1], self.cross_ij[k, 0])
            ref2[m] = np.where(swap, self.cross_ij[k, 0], self.cross_ij[k, 1])
        m = np.flatnonzero(cls == 2)
        if len(m):
            k = self._pick_cum(rng, self.mk_cum, len(m))
            xy[m] = self._rect_points(rng, self.mk, k)
            ref[m] = k
        m = np.flatnonzero(cls == 3)
        if len(m):
            k = self._pick_cum(rng, self.cp_cum, len(m))
            xy[m] = self._rect_points(rng, self.cp, k)
            ref[m] = k
        # anything outside the town (and the background class) → a uniform point in a grid
        bad = (cls == 4) | ~shapely.contains_xy(self.outline, xy[:, 0], xy[:, 1])
        m = np.flatnonzero(bad)
        if len(m):
            pts, g = self._area_points(rng, len(m))
            xy[m] = pts
            ref[m] = g
            cls[m] = 4
        return cls, xy, ref, ref2

    def _batch(self, batch: int, n: int) -> list[DemoIssue]:
        rng = np.random.default_rng([self.seed, 104729, batch])
        cls, xy, ref, ref2 = self._locations(rng, n)
        lon = np.round(CENTER_LON + xy[:, 0] / M_PER_DEG_LON, 7).tolist()
        lat = np.round(CENTER_LAT + xy[:, 1] / M_PER_DEG_LAT, 7).tolist()
        cat = np.empty(n, dtype=np.int64)
        for c in range(len(_CLASSES)):
            m = np.flatnonzero(cls == c)
            if len(m):
                cat[m] = rng.choice(len(_CATEGORIES), size=len(m), p=self.cat_p[c])
        src_p = np.array(_SOURCE_P, float) / sum(_SOURCE_P)
        src = rng.choice(len(ISSUE_SOURCES), size=n, p=src_p)
        sev = rng.choice(3, size=n, p=_SEVERITY_P)
        neg = rng.random(n) < 0.005
        sev[neg] = 2
        # reported time: more issues in recent weeks, fewer at weekends, daytime-heavy
        days = np.arange(ISSUE_WINDOW_DAYS)
        wd = (self.start.date().weekday() + days) % 7
        dw = (1.0 + 0.8 * days / ISSUE_WINDOW_DAYS) * np.where(wd >= 5, 0.6, 1.0)
        day = rng.choice(ISSUE_WINDOW_DAYS, size=n, p=dw / dw.sum())
        tod = np.clip(rng.normal(13.0 * 3600, 3.2 * 3600, n), 6.5 * 3600, 22.5 * 3600)
        t = np.empty((n, 10), dtype=np.int64)
        t[:, 0] = day * 86400 + tod.astype(np.int64)

        def dur(median_h: float, sigma: float, size: int = n) -> np.ndarray:
            d = rng.lognormal(math.log(median_h * 3600), sigma, size)
            return np.maximum(60, d).astype(np.int64)

        hours = _CAT_HOURS[cat]
        t[:, 1] = t[:, 0] + dur(2.0, 0.9)
        t[:, 2] = t[:, 1] + dur(1.5, 0.8)
        t[:, 3] = t[:, 2] + dur(4.0, 0.8)
        stubborn = np.where(rng.random(n) < 0.04, 6.0, 1.0)
        fix = hours * 3600 * rng.lognormal(math.log(0.5), 0.7, n) * stubborn
        t[:, 4] = t[:, 2] + np.maximum(fix.astype(np.int64), t[:, 3] - t[:, 2] + 600)
        t[:, 5] = t[:, 4] + dur(10.0, 0.7)
        t[:, 6] = t[:, 5] + (hours * 3600 * rng.lognormal(math.log(0.3), 0.6, n)).astype(np.int64)
        t[:, 6] = np.maximum(t[:, 6], t[:, 5] + 600)
        t[:, 7] = t[:, 6] + dur(10.0, 0.7)
        t[:, 8] = t[:, 7] + (hours * 3600 * rng.lognormal(math.log(0.3), 0.6, n)).astype(np.int64)
        t[:, 8] = np.maximum(t[:, 8], t[:, 7] + 600)
        t[:, 9] = t[:, 8] + dur(10.0, 0.7)
        rejected = (rng.random(n) < 0.03).tolist()
        rw_u = rng.random(n)
        rework = np.where(rw_u < 0.025, 2, np.where(rw_u < 0.11, 1, 0)).tolist()
        deadline_s = (t[:, 2] + hours * 3600).tolist()
        # description pieces
        pv = rng.integers(0, 1 << 30, size=(n, 3)).tolist()
        num = rng.integers(1, 400, size=n).tolist()
        unit = rng.integers(1, 6, size=n).tolist()
        rej_note = rng.integers(0, len(_REJECT_NOTES), size=n).tolist()
        cols = t.tolist()
        cls_l, ref_l, ref2_l, cat_l = cls.tolist(), ref.tolist(), ref2.tolist(), cat.tolist()
        src_l, sev_l, neg_l = src.tolist(), sev.tolist(), neg.tolist()

        start, end_s = self.start, self.end_s
        td = timedelta
        road_names, mk_names, cp_names = self.road_names, self.market_names, self.compound_names
        comm_names = self.grid_comm_name
        hour_l = hours.tolist()
        disp_notes = {h: f"交办至责任单位，限{h}小时内整改到位" for h in set(hour_l)}
        out: list[DemoIssue] = []
        # The loop allocates ~7 objects per issue and none of them form cycles: pausing the
        # cyclic GC keeps the stream fast even when the process holds a big county.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            for i in range(n):
                c = cls_l[i]
                r = ref_l[i]
                p0, p1, p2 = pv[i]
                if c == 0:
                    tpl = _ROAD_PLACES[p0 % len(_ROAD_PLACES)]
                    place = tpl.format(r=road_names[r], n=num[i], d=_DIRS[p1 % 4])
                elif c == 1:
                    tpl = _CROSS_PLACES[p0 % len(_CROSS_PLACES)]
                    place = tpl.format(r=road_names[r], r2=road_names[ref2_l[i]], d=_DIRS[p1 % 4])
                elif c == 2:
                    tpl = _MARKET_PLACES[p0 % len(_MARKET_PLACES)]
                    place = tpl.format(m=mk_names[r], d=_DIRS[p1 % 4])
                elif c == 3:
                    tpl = _COMPOUND_PLACES[p0 % len(_COMPOUND_PLACES)]
                    place = tpl.format(c=cp_names[r], n=num[i] % 30 + 1, u=unit[i])
                else:
                    place = comm_names[r] + "辖区" + _LANDMARKS[p0 % len(_LANDMARKS)]
                k = cat_l[i]
                phrases = _PHRASE_LISTS[k]
                desc = place + phrases[p2 % len(phrases)]
                source = ISSUE_SOURCES[src_l[i]]
                ts = cols[i]
                plan = _PLAN_REJECTED if rejected[i] else _PLANS[rework[i]]
                events: list[DemoEvent] = []
                reworks = 0
                for fr, to, kind, col in plan:
                    s = ts[col]
                    if s > end_s:
                        break
                    if kind == "rep":
                        note = _REPORT_NOTES[source]
                    elif kind == "acc":
                        note = _ACCEPT_NOTE
                    elif kind == "rej":
                        note = _REJECT_NOTES[rej_note[i]]
                    elif kind == "disp":
                        note = disp_notes[hour_l[i]]
                    elif kind == "start":
                        note = _START_NOTE
                    elif kind == "fix":
                        note = _FIX_NOTE
                    elif kind == "rework":
                        note = _REWORK_NOTE
                        reworks += 1
                    elif kind == "refix":
                        note = _REFIX_NOTE
                    else:
                        note = _CLOSE_NOTE
                    events.append(DemoEvent(start + td(seconds=s), fr, to, note))
                status = events[-1].to_status
                dispatched = len(events) >= 3 and not rejected[i]
                out.append(
                    DemoIssue(
                        lon=lon[i],
                        lat=lat[i],
                        category=_CATEGORIES[k],
                        source=source,
                        description=desc,
                        severity=_SEVERITY_KEYS[sev_l[i]],
                        negative_list=neg_l[i],
                        status=status,
                        reported_at=events[0].at,
                        deadline=start + td(seconds=deadline_s[i]) if dispatched else None,
                        closed_at=events[-1].at if status == "closed" else None,
                        rework_count=reworks,
                        events=events,
                    )
                )
        finally:
            if gc_was_enabled:
                gc.enable()
        return out

    def iterate(self, total: int) -> Iterator[DemoIssue]:
        done = 0
        batch = 0
        while done < total:
            n = min(self.BATCH, total - done)
            yield from self._batch(batch, n)
            done += n
            batch += 1


# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------


def _sort_key(xy: np.ndarray, band: float) -> list[tuple[int, float]]:
    return [(math.floor(-y / band), float(x)) for x, y in xy]


def _build(seed: int, scale: float, today: date, rng: np.random.Generator) -> DemoCounty:
    outline = _make_outline(rng, scale)
    tl = _make_tiling(rng, outline, scale)
    radius = math.sqrt(outline.area / math.pi)

    # --- admin areas: order, codes, names ---------------------------------------------------
    n_s = len(tl.streets)
    s_ang = np.arctan2(tl.street_xy[:, 1], tl.street_xy[:, 0]) % (2 * math.pi)
    s_order = sorted(range(n_s), key=lambda i: (float(s_ang[i]), i))
    s_rank = np.empty(n_s, dtype=np.int64)
    s_rank[s_order] = np.arange(n_s)
    street_names = _street_names(rng, tl.street_xy[s_order], radius)
    county_area = DemoArea("county", COUNTY_CODE, COUNTY_NAME, None, _multi(tl.county))
    streets = [
        DemoArea(
            "street",
            f"{COUNTY_CODE}{r + 1:03d}",
            street_names[r],
            COUNTY_CODE,
            _multi(tl.streets[i]),
        )
        for r, i in enumerate(s_order)
    ]
    comm_street = s_rank[tl.comm_street]  # community → street rank
    comm_keys = _sort_key(tl.comm_xy, 1000.0)
    c_order = sorted(range(len(tl.comms)), key=lambda i: (int(comm_street[i]), comm_keys[i], i))
    c_rank = np.empty(len(c_order), dtype=np.int64)
    c_rank[c_order] = np.arange(len(c_order))
    comm_pool = _Names(rng, _COMMUNITY_STEMS, set())
    communities: list[DemoArea] = []
    seq_in_street: dict[int, int] = {}
    for i in c_order:
        s = int(comm_street[i])
        seq_in_street[s] = seq_in_street.get(s, 0) + 1
        name = comm_pool.take(lambda x: x + "社区")[1]
        code = f"{streets[s].code}{seq_in_street[s]:03d}"
        communities.append(DemoArea("community", code, name, streets[s].code, _multi(tl.comms[i])))
    grid_comm = c_rank[tl.grid_comm]  # grid → community rank
    comm_street_r = np.empty(len(communities), dtype=np.int64)
    for i in range(len(c_order)):
        comm_street_r[c_rank[i]] = comm_street[i]

    grid_keys = _sort_key(tl.grid_xy, 150.0)
    g_order = sorted(range(len(tl.grids)), key=lambda i: (int(grid_comm[i]), grid_keys[i], i))
    grid_arr = np.array(tl.grids, dtype=object)[g_order]
    grid_comm = grid_comm[g_order]
    grids_m = to_metres(grid_arr)
    seq_in_comm: dict[int, int] = {}
    grid_codes: list[str] = []
    grid_names: list[str] = []
    for c in grid_comm.tolist():
        seq_in_comm[c] = seq_in_comm.get(c, 0) + 1
        grid_codes.append(f"{communities[c].code}{seq_in_comm[c]:03d}")
        grid_names.append(f"{communities[c].name}第{seq_in_comm[c]}网格")

    grid_tree = shapely.STRtree(grids_m)

    def locate(xy: np.ndarray) -> np.ndarray:
        pts = shapely.points(xy)
        res = grid_tree.query(pts, predicate="intersects")
        out = np.full(len(xy), -1, dtype=np.int64)
        out[res[0][::-1]] = res[1][::-1]  # first hit per point
        miss = out < 0
        if miss.any():
            near = grid_tree.query_nearest(pts[miss], all_matches=False)
            out[np.flatnonzero(miss)[near[0]]] = near[1]
        return out

    # --- roads ------------------------------------------------------------------------------
    town = _Town(rng, outline, scale)
    if scale > 1.5:
        k = max(1, n_s // 3)
        picks = rng.choice(n_s, size=k, replace=False)
        town.cores = np.concatenate([town.cores, tl.street_xy[np.sort(picks)]])
    town.neighbourhood = lambda xy: communities[
        int(grid_comm[locate(np.asarray([xy]))[0]])
    ].name.removesuffix("社区")
    town.main_roads()
    town.secondary_roads(max(1, round(25 * scale)))
    town.lanes(max(1, round(90 * scale)))
    roads = town.roads
    road_mid = shapely.get_coordinates(
        shapely.line_interpolate_point([r.line for r in roads], 0.5, normalized=True)
    )
    road_grid = locate(road_mid)

    # --- markets and compounds ----------------------------------------------------------------
    markets = _place_markets(town, max(2, round(12 * scale)))
    market_grid = locate(np.array([m.centre for m in markets]).reshape(-1, 2))
    compounds = _place_compounds(town, max(1, round(80 * scale)), grids_m, markets)

    # --- features ---------------------------------------------------------------------------
    grid_type = np.where(rng.random(len(grid_arr)) < 0.05, GRID_TYPES[1], GRID_TYPES[0])
    grid_type[market_grid] = GRID_TYPES[1]
    feats_grid = [
        DemoFeature(
            "grid",
            grid_codes[i],
            grid_names[i],
            _multi(grid_arr[i]),
            {"community_code": communities[int(grid_comm[i])].code, "grid_type": str(grid_type[i])},
        )
        for i in range(len(grid_arr))
    ]
    road_geoms = to_lonlat(np.array([r.line for r in roads], dtype=object))
    feats_road = [
        DemoFeature("road", f"R{i + 1:04d}", r.name, road_geoms[i], {"grade": r.grade})
        for i, r in enumerate(roads)
    ]

    used_market_names: set[str] = set()
    market_names: list[str] = []
    feats_market: list[DemoFeature] = []
    seen_street: set[int] = set()
    for i, m in enumerate(markets):
        g = int(market_grid[i])
        c = int(grid_comm[g])
        s = int(comm_street_r[c])
        sname = streets[s].name
        road = roads[m.road]
        options = [
            road.stem + "菜市场",
            communities[c].name.removesuffix("社区") + "农贸市场",
            road.stem + "综合市场",
            communities[c].name.removesuffix("社区") + "菜市场",
        ]
        if s not in seen_street and sname.startswith("城"):
            options.insert(0, sname.removesuffix("街道") + "农贸市场")
        seen_street.add(s)
        name = next((o for o in options if o not in used_market_names), f"演示县第{i + 1}菜市场")
        used_market_names.add(name)
        market_names.append(name)
        geom = Point(m.centre) if m.is_point else m.rect
        addr = f"{COUNTY_NAME}{sname}{road.name}{int(rng.integers(1, 400))}号"
        feats_market.append(
            DemoFeature("market", f"M{i + 1:03d}", name, to_lonlat(geom), {"address": addr})
        )

    cp_used: set[str] = set()
    cp_pool = _Names(rng, _COMPOUND_STEMS, cp_used, cycle=True)
    suffixes = {
        COMPOUND_TYPES[0]: (
            ("花园", "家园", "苑", "华府", "名邸", "雅苑", "华庭", "公馆", "嘉园", "府"),
            None,
        ),
        COMPOUND_TYPES[1]: (("新村", "小区", "公寓", "里"), (4, 3, 2, 1)),
        COMPOUND_TYPES[2]: (("家园", "新村", "安置小区", "新苑"), (3, 3, 2, 2)),
    }
    prop_p = {
        COMPOUND_TYPES[0]: (0.9, 0.05, 0.05),
        COMPOUND_TYPES[1]: (0.2, 0.45, 0.35),
        COMPOUND_TYPES[2]: (0.1, 0.3, 0.6),
    }
    per_building = {COMPOUND_TYPES[0]: 2200.0, COMPOUND_TYPES[1]: 1500.0, COMPOUND_TYPES[2]: 1800.0}
    compound_names: list[str] = []
    feats_compound: list[DemoFeature] = []
    cp_geoms = to_lonlat(np.array([c.rect for c in compounds], dtype=object))
    old_units = list(_OLD_WORK_UNITS)
    for i, cpd in enumerate(compounds):
        opts, w = suffixes[cpd.ctype]
        suffix = _pick(rng, opts, w)
        name = ""
        if cpd.ctype == COMPOUND_TYPES[1] and old_units and rng.random() < 0.25:
            cand = old_units.pop(int(rng.integers(len(old_units)))) + _pick(
                rng, ("宿舍", "新村", "小区")
            )
            if cand not in cp_used:
                cp_used.add(cand)
                name = cand
        if not name:
            name = cp_pool.take(lambda s, suffix=suffix: s + suffix)[1]
        compound_names.append(name)
        area = cpd.a * cpd.b
        bcount = max(2, round(area / per_building[cpd.ctype] * rng.uniform(0.7, 1.3)))
        feats_compound.append(
            DemoFeature(
                "compound",
                f"C{i + 1:04d}",
                name,
                cp_geoms[i],
                {
                    "compound_type": cpd.ctype,
                    "property_type": _pick(rng, PROPERTY_TYPES, prop_p[cpd.ctype]),
                    "building_count": bcount,
                },
            )
        )

    # --- units, leaders, assignments ----------------------------------------------------------
    units, leaders, meta = _make_people(rng, scale, streets, communities, comm_street_r)
    refs: dict[str, list[_FeatureRef]] = {"grid": [], "road": [], "market": [], "compound": []}
    for i, f in enumerate(feats_grid):
        c = int(grid_comm[i])
        refs["grid"].append(_FeatureRef("grid", f.code, int(comm_street_r[c]), c, ""))
    for i, f in enumerate(feats_road):
        c = int(grid_comm[road_grid[i]])
        refs["road"].append(_FeatureRef("road", f.code, int(comm_street_r[c]), c, roads[i].grade))
    for i, f in enumerate(feats_market):
        c = int(grid_comm[market_grid[i]])
        refs["market"].append(_FeatureRef("market", f.code, int(comm_street_r[c]), c, ""))
    for i, f in enumerate(feats_compound):
        c = int(grid_comm[compounds[i].grid])
        refs["compound"].append(
            _FeatureRef("compound", f.code, int(comm_street_r[c]), c, compounds[i].ctype)
        )
    assignments = _make_assignments(rng, today, refs, meta, len(streets), len(communities))

    sampler = _IssueSampler(
        seed=seed,
        today=today,
        outline=outline.buffer(-0.5),
        roads=roads,
        markets=markets,
        compounds=compounds,
        compound_names=compound_names,
        market_names=market_names,
        grids_m=grids_m,
        grid_comm_name=[communities[int(c)].name for c in grid_comm],
    )
    return DemoCounty(
        seed=seed,
        scale=scale,
        today=today,
        county=county_area,
        streets=streets,
        communities=communities,
        features={
            "grid": feats_grid,
            "road": feats_road,
            "market": feats_market,
            "compound": feats_compound,
        },
        units=units,
        leaders=leaders,
        assignments=assignments,
        _sampler=sampler,
    )


def generate_county(
    seed: int = 1, scale: float = 1.0, today: date | None = None, defects: bool = True
) -> DemoCounty:
    """Builds the demo county. Same (seed, scale, today, defects) ⇒ identical output.

    `today` (default: date.today()) anchors assignment dates (valid_from within the last ~6
    months) and the issue window (the 8 weeks ending with `today`). `defects` plants one gap
    and one overlap in the grid layer (see SurveyDefects); without them the grids tile the
    communities exactly.
    """
    if not scale > 0:
        raise ValueError("scale must be positive")
    if today is None:
        today = date.today()
    base = int(seed) % (1 << 63)
    for attempt in range(12):
        rng = np.random.default_rng([base, attempt])
        try:
            county = _build(base, scale, today, rng)
        except _Retry:
            continue
        if defects:
            _plant_survey_defects(county)
        return county
    raise RuntimeError("could not build a valid demo county")


def _plant_survey_defects(county: DemoCounty) -> None:
    """Withholds one grid (a gap) and widens another into its neighbours (an overlap)."""
    grids = county.features["grid"]
    if len(grids) < 3:
        return
    withheld = grids[len(grids) // 3]
    widened = grids[(2 * len(grids)) // 3]
    outline = to_metres(county.county.geom)
    grown = to_metres(widened.geom).buffer(WIDENED_BY_M, join_style="mitre").intersection(outline)
    widened.geom = _as_multi(to_lonlat(grown))
    county.features["grid"] = [g for g in grids if g is not withheld]
    county.defects = SurveyDefects(ungridded=[withheld.code], widened=[widened.code])


def _as_multi(geom: Any) -> MultiPolygon:
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    return MultiPolygon([g for g in geom.geoms if isinstance(g, Polygon)])
