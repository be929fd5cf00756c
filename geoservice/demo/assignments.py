"""The demo county generator: assignments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np

from geoservice.demo.model import TZ, DemoAssignment
from geoservice.demo.people import _LeaderMeta
from geoservice.vocab import (
    ROAD_GRADES,
)


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
