"""Default vocabularies of the campaign (configurable lists live in config; these are defaults).

Keys are the Chinese terms users see and that imports carry; code never branches on them
except through these tables.
"""

from __future__ import annotations

# Issue categories and their default rectification limit in hours (限时整改).
CATEGORY_DEADLINE_HOURS: dict[str, int] = {
    "环境卫生": 24,
    "垃圾外溢": 24,
    "道路破损": 72,
    "车辆违停": 24,
    "交通秩序": 24,
    "乱贴乱画": 48,
    "空中飞线": 168,
    "乱搭乱建": 168,
    "占道经营": 24,
    "设施损坏": 72,
    "公益广告缺失": 72,
    "建筑工地围挡": 72,
    "绿化损坏": 72,
    "其他": 72,
}

ISSUE_SOURCES: tuple[str, ...] = (
    "暗访督查",
    "模拟测评",
    "测评反馈",
    "12345热线",
    "城市啄木鸟",
    "随手拍",
    "自查",
    "回头看",
)

# Issue states of the closed loop (上报 → 立案 → 派遣 → 处置 → 反馈 → 核查 → 结案).
ISSUE_STATUSES: dict[str, str] = {
    "reported": "已上报",
    "accepted": "已立案",
    "rejected": "不予立案",
    "dispatched": "已交办",
    "in_progress": "整改中",
    "fixed": "已反馈待复核",
    "closed": "已销号",
}
OPEN_STATUSES: tuple[str, ...] = ("reported", "accepted", "dispatched", "in_progress", "fixed")

SEVERITIES: dict[int, str] = {1: "一般", 2: "较重", 3: "严重"}

ROAD_GRADES: tuple[str, ...] = ("主干道", "次干道", "背街小巷")
COMPOUND_TYPES: tuple[str, ...] = ("新建小区", "老旧小区", "村改居社区")
PROPERTY_TYPES: tuple[str, ...] = ("市场型", "自治型", "保障型")
GRID_TYPES: tuple[str, ...] = ("综合网格", "专属网格")

LEADER_LEVELS: tuple[str, ...] = ("市级", "县级", "镇街", "村社区")
ASSIGNMENT_ROLES: tuple[str, ...] = (
    "联点领导",
    "包保责任人",
    "网格长",
    "网格员",
    "道路长",
    "社区长",
    "楼栋长",
    "单元长",
    "点长",
)

# Admin levels and their code lengths (GB/T 2260 …): geoservice.areas.levels.

USER_ROLES: tuple[str, ...] = ("admin", "planner", "leader", "inspector", "viewer", "integration")
