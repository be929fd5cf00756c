"""OpenAPI paths of /api/fieldwork (巡查、暗访、照片存疑, geoservice/api/fieldwork.py)."""

from __future__ import annotations

from typing import Any

from geoservice.api.openapi_kit import (
    answer,
    array,
    boolean,
    enum,
    free,
    integer,
    json_body,
    number,
    obj,
    paging,
    path,
    query,
    string,
)
from geoservice.api.openapi_kit import op as _op
from geoservice.ranking.periods import PERIOD_KINDS

TAG = "巡查与暗访"
TAG_TEXT = (
    "巡查计划（按图层/点位类别和责任角色，每天/每周/每月 N 次）、"
    "按周期生成的巡查任务（交给周期开始时的责任人）、巡查打卡（签到位置、检查结果、照片、现场上报问题；幂等键防重复）、巡查到位率、暗访"
    "（可复现的随机抽样，完成前对被抽查地点的责任领导保密）、照片存疑（EXIF 时间/位置、重复使用）"
    "与带水印的展示图。不是自己的任务 404，幂等键内容不同 409，输入错误 422"
)
PLAN, VISIT, INSPECT, EVIDENCE, RATES = (
    "patrols.plan",
    "patrols.visit",
    "inspections.run",
    "evidence.read",
    "rankings.read",
)

DATE = string("YYYY-MM-DD", format="date")
KEY = string("幂等键：字母、数字和 . _ : -，1–64 个", pattern=r"^[A-Za-z0-9._:-]{1,64}$")


def _schedule(layer_names: list[str], roles: list[str]) -> dict:
    return obj(
        {"layer": enum(layer_names, "图层"), "role": enum(roles, "责任角色"),
         "period": enum(["day", "week", "month"])},
        {"times": integer("每周期次数", minimum=1, maximum=31),
         "site_kind": string("点位类别代码（仅 site）", maxLength=32),
         "name": string(maxLength=100), "active": boolean()},
    )  # fmt: skip


VISIT_FIELDS = obj(
    {"task_id": integer("巡查任务编号", minimum=1, maximum=2**62)},
    {
        "idempotency_key": KEY,
        "visited_at": string("巡查时间（带时区；须在任务周期内）", format="date-time"),
        "lon": number("签到经度", minimum=-180, maximum=180),
        "lat": number("签到纬度", minimum=-90, maximum=90),
        "coord_sys": enum(["wgs84", "gcj02"]),
        "outcome": enum(["ok", "problem", "正常", "有问题"]),
        "checklist": array(free("{standard_id 或 item, outcome, note}")),
        "note": string(maxLength=2000),
        "photos": array(string("base64 或 data: URL", format="byte"), maxItems=9),
        "captures": array(enum(["camera", "gallery"])),
        "issues": array(free("现场上报的问题 {category, description, severity, photos: [序号]}")),
    },
)


def _plan_body(layer_names: list[str]) -> dict:
    return obj(
        {"layer": enum(layer_names, "图层"), "date": DATE,
         "count": integer("抽取数量", minimum=1, maximum=500)},
        {"seed": integer("随机种子（不填则随机生成并记录）", minimum=0, maximum=2**62),
         "street": string("街道编码或名称", maxLength=100),
         "site_kind": string(maxLength=32), "name": string(maxLength=100),
         "inspector_id": integer("暗访人员账号", minimum=1, maximum=2**31 - 1)},
    )  # fmt: skip


def report_body(config: Any) -> dict[str, Any]:
    """The field app's report: the issue report's fields, with the city's vocabularies."""
    categories = list(config["ISSUE_CATEGORIES"]) if config else []
    sources = list(config["ISSUE_SOURCES"]) if config else []
    return obj(
    {"idempotency_key": KEY, "lon": number(minimum=-180, maximum=180),
     "lat": number(minimum=-90, maximum=90),
     "category": enum(categories, "问题类别") if categories else string("问题类别", minLength=1)},
    {"coord_sys": enum(["wgs84", "gcj02"]), "description": string(maxLength=2000),
     "source": enum(sources, "问题来源（默认 自查）") if sources else string("问题来源"),
     "recorded_at": string("手机记录时间（仅记录，不改变上报时间）", format="date-time"),
     "photos": array(string("base64 或 data: URL", format="byte"), maxItems=9)},
    )  # fmt: skip


RESULT_BODY = obj(
    {"place_id": integer(minimum=1, maximum=2**62),
     "outcome": enum(["pass", "fail", "合格", "不合格"])},
    {"category": string("不合格时的问题类别"), "note": string(maxLength=2000),
     "lon": number(minimum=-180, maximum=180), "lat": number(minimum=-90, maximum=90),
     "checklist": array(free("点位适用标准 {standard_id, outcome: 合格|不合格, note}")),
     "photos": array(string("base64；不合格至少 1 张", format="byte"), maxItems=9)},
)  # fmt: skip


def _period_params() -> list[dict]:
    """The period parameters, as the rankings take them
    (geoservice.ranking.periods.parse_period)."""
    kinds = "、".join(f"{k}={v}" for k, v in PERIOD_KINDS.items())
    return [
        query("period", f"统计周期（默认 week）：{kinds}", enum(PERIOD_KINDS)),
        query("from", "周期：周 2026-W47、月 2026-11、季度 2026-Q4 或其中任一天 YYYY-MM-DD；"
              "自定义周期为开始日期或时间；默认上一个完整周期", string()),
        query("week", "from 的旧名", string()),
        query("to", "自定义周期的结束（不含）", string()),
    ]  # fmt: skip


def op(operation_id: str, summary: str, permission, responses: dict, **kw: Any):
    return _op(TAG, operation_id, summary, permission, responses, **kw)


def paths(config: Any = None) -> dict[str, Any]:
    from geoservice.fieldwork.patrols import known_roles
    from geoservice.registry import layers

    registry = layers()
    layer_names = registry.names
    SCHEDULE = _schedule(
        layer_names, known_roles(registry, (config or {}).get("ASSIGNMENT_ROLES", ()))
    )
    PLAN_BODY = _plan_body(layer_names)
    ok = answer
    schedule_id = path("schedule_id", "巡查计划编号")
    visit_id = path("visit_id", "巡查记录编号")
    plan_id = path("plan_id", "暗访计划编号")
    photo_id = path("photo_id", "照片编号")
    issue_id = path("issue_id", "问题编号")
    image = answer({"type": "string", "format": "binary"}, "JPEG", "image/jpeg")
    return {
        "/fieldwork/schedules": {
            "get": op("list_patrol_schedules", "巡查计划列表", PLAN, {"200": ok(free())}),
            "post": op("create_patrol_schedule", "新建巡查计划", PLAN,
                       {"201": ok(free(), "已创建")}, body=json_body(SCHEDULE),
                       errors=(409, 415, 422)),
        },
        "/fieldwork/schedules/{schedule_id}": {
            "patch": op("update_patrol_schedule", "修改或停用巡查计划（只影响以后生成的任务）",
                        PLAN, {"200": ok(free())}, parameters=[schedule_id],
                        body=json_body(obj({}, SCHEDULE["properties"])),
                        errors=(404, 409, 415, 422)),
        },
        "/fieldwork/tasks/generate": {
            "post": op("generate_patrol_tasks", "生成某日所在周期的巡查任务（可重复调用）", PLAN,
                       {"200": ok(free())}, body=json_body(obj({}, {"date": DATE})),
                       errors=(415, 422)),
        },
        "/fieldwork/tasks/mine": {
            "get": op("my_patrol_tasks", "我当天的巡查任务（含地点几何）", VISIT,
                      {"200": ok(free())},
                      parameters=[query("date", "日期 YYYY-MM-DD（默认今天）", DATE)],
                      errors=(404, 422)),
        },
        "/fieldwork/tasks/overdue": {
            "get": op("overdue_patrol_tasks",
                      "逾期未巡查的任务：最早的 500 项（tasks、count）与全部项数（numberMatched）",
                      PLAN, {"200": ok(free())}),
        },
        "/fieldwork/unvisited": {
            "get": op("unvisited_places",
                      "本周期尚未巡查的地点（GeoJSON；openTasks 为未完成任务数，多于 10000 项时"
                      " truncated 为 true，只含前 10000 项的地点）", PLAN,
                      {"200": ok(free("FeatureCollection"), media="application/json")},
                      parameters=[query("date", "日期 YYYY-MM-DD（默认今天）", DATE)],
                      errors=(422,)),
        },
        "/fieldwork/reports": {
            "post": op("create_field_report", "从巡查应用上报问题（幂等：每条记录一个幂等键）",
                       "issues.report",
                       {"201": ok(free("问题（同 GET /issues/{id}）"), "已上报"),
                        "200": ok(free(), "同一幂等键、同一内容：返回第一次上报的问题")},
                       body=json_body(report_body(config)), errors=(403, 409, 413, 415, 422)),
        },
        "/fieldwork/visits": {
            "post": op("create_patrol_visit", "巡查打卡（JSON 或 multipart；幂等）", VISIT,
                       {"201": ok(free(), "已记录"),
                        "200": ok(free(), "同一幂等键、同一内容：返回第一次的记录")},
                       body=json_body(VISIT_FIELDS), errors=(404, 409, 413, 415, 422)),
        },
        "/fieldwork/visits/mine": {
            "get": op("my_patrol_visits", "我的巡查记录", VISIT, {"200": ok(free())}),
        },
        "/fieldwork/visits/{visit_id}": {
            "get": op("get_patrol_visit", "一条巡查记录", "layers.read", {"200": ok(free())},
                      parameters=[visit_id], errors=(404,)),
        },
        "/fieldwork/rates": {
            "get": op("patrol_rates", "巡查到位率（已巡查/应巡查）", RATES, {"200": ok(free())},
                      parameters=[
                          query("of", "分组：leader（责任人）、unit（单位）、street（街道）",
                                enum(["leader", "unit", "street"])),
                          *_period_params(),
                      ], errors=(400, 422)),
        },
        "/fieldwork/inspections": {
            "get": op("list_inspections", "可见的暗访计划（完成前仅创建者、承担者与创文办可见）",
                      "layers.read", {"200": ok(free())}),
            "post": op("create_inspection", "抽取暗访地点（可复现的随机抽样）", INSPECT,
                       {"201": ok(free(), "已创建")}, body=json_body(PLAN_BODY),
                       errors=(415, 422)),
        },
        "/fieldwork/inspections/{plan_id}": {
            "get": op("get_inspection", "一个暗访计划（对被抽查地点的责任领导 404）",
                      "layers.read", {"200": ok(free())}, parameters=[plan_id], errors=(404,)),
        },
        "/fieldwork/inspections/{plan_id}/results": {
            "post": op("record_inspection_result", "记录一个地点的暗访结果", INSPECT,
                       {"200": ok(free())}, parameters=[plan_id], body=json_body(RESULT_BODY),
                       errors=(403, 404, 409, 413, 415, 422)),
        },
        "/fieldwork/inspections/{plan_id}/complete": {
            "post": op("complete_inspection", "完成暗访：不合格的地点生成问题", INSPECT,
                       {"200": ok(free())}, parameters=[plan_id], errors=(403, 404, 409)),
        },
        "/fieldwork/evidence/suspicious": {
            "get": op("suspicious_photos", "照片存疑清单", EVIDENCE, {"200": ok(free())},
                      parameters=paging(200, 1000)),
        },
        "/fieldwork/evidence/units": {
            "get": op("evidence_per_unit", "各单位照片存疑统计", EVIDENCE, {"200": ok(free())}),
        },
        "/fieldwork/evidence/issues/{issue_id}": {
            "get": op("issue_evidence", "一个问题各照片的核验结果", "issues.read",
                      {"200": ok(free())}, parameters=[issue_id], errors=(404,)),
        },
        "/fieldwork/issue-photos/{photo_id}/display": {
            "get": op("issue_photo_display", "问题照片的水印展示图（原图不变）", "issues.read",
                      {"200": image}, parameters=[photo_id], errors=(404,)),
        },
        "/fieldwork/photos/{photo_id}/{variant}": {
            "get": op("field_photo", "巡查/暗访照片：display（水印）、thumb、original",
                      "layers.read", {"200": image},
                      parameters=[photo_id, path("variant", "display、thumb 或 original",
                                                 enum(["display", "thumb", "original"]))],
                      errors=(404,)),
        },
    }  # fmt: skip
