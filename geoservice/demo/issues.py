"""The demo county generator: issues and their status events."""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

import numpy as np
import shapely
from shapely.geometry import Polygon

from geoservice.demo.model import (
    CENTER_LAT,
    CENTER_LON,
    ISSUE_WINDOW_DAYS,
    M_PER_DEG_LAT,
    M_PER_DEG_LON,
    TZ,
    DemoEvent,
    DemoIssue,
)
from geoservice.demo.places import _Compound, _LineSampler, _Market, _Road
from geoservice.vocab import (
    CATEGORY_DEADLINE_HOURS,
    COMPOUND_TYPES,
    ISSUE_SOURCES,
    ROAD_GRADES,
    SEVERITIES,
)

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
