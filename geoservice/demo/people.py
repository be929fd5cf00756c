"""The demo county generator: units and leaders."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geoservice.demo.model import DemoArea, DemoLeader, DemoUnit
from geoservice.demo.names import _GIVEN_FEMALE, _GIVEN_MALE, _PHONE_PREFIXES, _SURNAMES
from geoservice.vocab import (
    LEADER_LEVELS,
)

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
