"""OpenAPI: the issue workflow (report, one issue, transitions, queues, duplicates, photos) and
the attribution preview. Vocabularies come from the config and geoservice.vocab."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geoservice.api.openapi_kit import (
    GEOJSON,
    JSON,
    answer,
    array,
    boolean,
    enum,
    file_field,
    free,
    instant,
    integer,
    json_body,
    nullable,
    number,
    obj,
    op,
    paged,
    paging,
    path,
    query,
    ref,
    string,
    text_or_null,
)
from geoservice.coords import COORD_SYSTEMS
from geoservice.issues.workflow import TRANSITIONS
from geoservice.vocab import ISSUE_STATUSES, SEVERITIES

TAG = "问题流转"
TAG_ATTRIBUTION = "责任归属"
ISSUES = "issues"

_STATUS_TEXT = "；".join(f"{k}={v}" for k, v in ISSUE_STATUSES.items())
_MOVES = "；".join(
    f"{t.from_status}→{t.to_status}：{t.label}（{t.permission}"
    + ("，仅责任方" if t.responsible else "")
    + ("，须填 note" if t.note_required else "")
    + (f"，至少 {t.min_photos} 张照片" if t.min_photos else "")
    + ("，须指定 leader_id" if t.needs_leader else "")
    + "）"
    for t in TRANSITIONS
)


def schemas(config: Mapping[str, Any]) -> dict[str, Any]:
    status = enum(ISSUE_STATUSES, f"问题状态：{_STATUS_TEXT}")
    named = obj({"id": integer(), "name": text_or_null()})
    leader = obj(
        {
            "id": integer(),
            "name": string("姓名"),
            "title": text_or_null("职务"),
            "unit": nullable(named),
        },
        {"phone": text_or_null("电话（某点归属查询只对可查看包保关系的账号给出）")},
        description="包保领导",
    )
    claim = obj(
        {
            "layer": string("图层名"),
            "layer_title": string("图层中文名"),
            "collection": text_or_null("集合编号"),
            "place_id": integer("地点（要素）编号"),
            "code": text_or_null("要素编码"),
            "name": text_or_null("要素名称"),
            "distance_m": number("到该点的距离（米）"),
            "rule": string("认领规则（within / 距离）"),
            "rule_text": string("认领规则的中文说明"),
            "precedence": nullable(integer("图层优先级（小者优先）")),
            "leader": nullable(ref("leaderBrief")),
            "primary": boolean("是否主责任地点"),
        },
        description="认领该点的一个地点",
    )
    attribution = obj(
        {
            "places": array(ref("attributionClaim"), "认领该点的地点，主责任地点在前"),
            "primary_place": nullable(ref("attributionClaim")),
            "leader": nullable(ref("leaderBrief")),
            "unit": nullable(named),
            "unassigned": boolean("没有包保领导（进入待派遣队列）"),
            "reason": nullable(enum(["no_place", "no_leader", "no_unit_head"], "未落实的原因")),
            "manual": free("人工交办记录（无则为 null）"),
            "fallback": free("兜底归属：step（claims/grid/community/street）、order、leader_id"),
            "routing": free(
                "条块分工：rule_id、unit_id、assist_unit_ids、place_leader_id、"
                "co_responsible（无则为 null）"
            ),
            "precedence": string("图层优先级的中文说明"),
            "rule": string("一句话说明为何归属此人（或进入待派遣队列）"),
        },
        description="责任归属及其规则",
    )
    photo = obj(
        {
            "id": integer(),
            "kind": enum(["before", "after"], "before：整改前，after：整改后"),
            "event_id": nullable(integer("所属流转记录")),
            "content_type": enum(["image/jpeg", "image/png"]),
            "size_bytes": integer(),
            "width": integer(),
            "height": integer(),
            "taken_at": nullable(instant("拍摄时间（EXIF）")),
            "exif_lon": nullable(number()),
            "exif_lat": nullable(number()),
            "url": string("原图地址（GET /api/photos/{id}）"),
            "thumb_url": string("缩略图地址"),
        }
    )
    event = obj(
        {
            "id": integer(),
            "at": instant(),
            "at_local": string("本地时间 YYYY-MM-DD HH:MM"),
            "actor": nullable(named),
            "from": nullable(status),
            "to": status,
            "from_label": text_or_null(),
            "to_label": string(),
            "action": text_or_null("动作（report、accept、dispatch、fix、verify、merge…）"),
            "note": text_or_null("说明"),
            "data": free("动作的附加数据"),
            "photo_ids": array(integer()),
        },
        description="流转记录（时间线的一条）",
    )
    move = obj(
        {
            "to": status,
            "action": string(),
            "label": string("按钮文字"),
            "note_required": boolean(),
            "min_photos": integer(),
            "needs_leader": boolean("须指定交办对象 leader_id"),
        },
        description="当前账号可执行的一个流转",
    )
    candidate = obj(
        {
            "id": integer(),
            "status": status,
            "status_label": string(),
            "reported_at": instant(),
            "description": text_or_null(),
            "leader_id": nullable(integer()),
            "distance_m": number(),
        },
        description="可能重复的问题（同类别、附近、时间窗口内，未办结）",
    )
    summary = obj(
        {
            "id": integer(),
            "category": string(),
            "source": string(),
            "description": text_or_null(),
            "status": status,
            "status_label": string(),
            "reported_at": instant(),
            "reported_at_local": string(),
            "deadline": nullable(instant("整改时限")),
            "overdue": boolean(),
            "leader_id": nullable(integer()),
            "unit_id": nullable(integer()),
            "primary_place_id": nullable(integer()),
            "grid_id": nullable(integer()),
            "reason": nullable(enum(["no_place", "no_leader"], "未落实的原因（待派遣）")),
        },
        description="列表中的一个问题",
    )
    properties = obj(
        {
            "id": integer(),
            "category": string("问题类别"),
            "source": string("问题来源"),
            "description": text_or_null(),
            "severity": enum(list(SEVERITIES)),
            "severity_label": string(),
            "negative_list": boolean("负面清单"),
            "status": status,
            "status_label": string(),
            "reported_at": instant(),
            "reported_at_local": string(),
            "reported_by": nullable(named),
            "deadline": nullable(instant()),
            "deadline_local": string(),
            "overdue": boolean(),
            "overdue_hours": nullable(number("超期小时数")),
            "closed_at": nullable(instant()),
            "rework_count": integer("返工次数"),
            "relapse_of_id": nullable(integer("反弹：原问题编号")),
            "duplicate_of_id": nullable(integer("已并入的主问题编号")),
            "duplicates": array(integer(), "并入本问题的重复问题"),
            "primary_place_id": nullable(integer()),
            "grid_id": nullable(integer()),
            "leader_id": nullable(integer()),
            "unit_id": nullable(integer()),
            "attribution": ref("attribution"),
            "photos": array(ref("photo")),
            "timeline": array(ref("issueEvent")),
            "allowed_transitions": array(ref("issueMove")),
        },
        {
            "duplicate_candidates": array(ref("duplicateCandidate"), "未办结且非重复问题才有"),
            "extensions": ref("extensionHistory"),
            "sla": free(
                "立案、交办时限（配置了 ACCEPT_SLA_HOURS / DISPATCH_SLA_HOURS 时）："
                "accept / dispatch 各为 {due, done_at, overdue, hours}"
            ),
        },
    )
    point = obj(
        {
            "type": enum(["Point"]),
            "coordinates": array(number(), minItems=2, maxItems=2),
        }
    )
    categories = list(config["ISSUE_CATEGORIES"])
    sources = list(config["ISSUE_SOURCES"])
    optional = list(config.get("PHOTO_OPTIONAL_SOURCES", ()))
    report_fields = {
        "lon": number("经度（或用 geometry）"),
        "lat": number("纬度"),
        "geometry": point,
        "coord_sys": enum(COORD_SYSTEMS, "坐标系：wgs84（GPS/天地图，默认）、gcj02（高德/腾讯）"),
        "category": enum(categories, "问题类别（必填）"),
        "source": enum(sources, "问题来源（必填）"),
        "description": string("问题描述（不超过 2000 字）", maxLength=2000),
        "severity": enum(
            list(SEVERITIES),
            "严重程度：1 一般、2 较重、3 严重（默认 1；非默认值需 issues.set_report_meta）",
        ),
        "negative_list": boolean("负面清单事项（true 需 issues.set_report_meta）"),
        "reported_at": instant(
            "发现时间（须带时区，不晚于当前时间；默认为提交时间；补录需 issues.set_report_meta）"
        ),
        "photos": array(
            {
                "oneOf": [
                    string("base64 或 data: URL"),
                    obj(
                        {"data": string("base64")},
                        {"filename": string(), "content_type": string()},
                    ),
                ]
            },
            f"整改前照片（JPEG/PNG/HEIC，每张不超过 {config['PHOTO_MAX_BYTES'] // 1048576} MB，"
            f"最多 {config['PHOTO_MAX_COUNT']} 张；至少 {config['REPORT_MIN_PHOTOS']} 张，"
            f"来源为 {'、'.join(optional) or '（无）'} 时可不附）",
        ),
    }
    return {
        "leaderBrief": leader,
        "attributionClaim": claim,
        "attribution": attribution,
        "photo": photo,
        "issueEvent": event,
        "issueMove": move,
        "duplicateCandidate": candidate,
        "issueSummary": summary,
        "issue": obj(
            {
                "type": enum(["Feature"]),
                "id": integer(),
                "geometry": point,
                "properties": properties,
            },
            description="一个问题（GeoJSON Feature），含归属、时间线、照片和当前账号可执行的流转",
        ),
        "issueTransitionResult": {
            "allOf": [ref("issue"), obj({"event_id": integer("本次流转的记录编号")})]
        },
        "issueReport": {
            **obj(
                {"category": report_fields["category"], "source": report_fields["source"]},
                {k: v for k, v in report_fields.items() if k not in ("category", "source")},
                "上报内容：lon/lat 或 geometry 二选一",
            ),
            "anyOf": [{"required": ["geometry"]}, {"required": ["lon", "lat"]}],
        },
        "issueReportFeature": obj(
            {
                "type": enum(["Feature"]),
                "geometry": point,
                "properties": obj(
                    {"category": report_fields["category"], "source": report_fields["source"]},
                    {
                        k: v
                        for k, v in report_fields.items()
                        if k not in ("category", "source", "lon", "lat", "geometry")
                    },
                ),
            },
            description="以 GeoJSON Feature 上报",
        ),
        "attributionPreview": obj(
            {
                "point": point,
                "at": instant("按此时刻的包保关系归属"),
                "at_local": string(),
                "primary_place_id": nullable(integer()),
                "grid_id": nullable(integer()),
                "leader_id": nullable(integer()),
                "unit_id": nullable(integer()),
                "attribution": ref("attribution"),
            },
            {
                "input": obj(
                    {"coord_sys": enum(COORD_SYSTEMS), "lon": number(), "lat": number()},
                    description="非 WGS-84 输入时：原始坐标（point 为换算后的 WGS-84）",
                )
            },
        ),
    }


def _multipart_report(config: Mapping[str, Any]) -> dict[str, Any]:
    return obj(
        {
            "lon": number(),
            "lat": number(),
            "category": enum(list(config["ISSUE_CATEGORIES"])),
            "source": enum(list(config["ISSUE_SOURCES"])),
        },
        {
            "coord_sys": enum(COORD_SYSTEMS),
            "description": string(),
            "severity": enum(list(SEVERITIES)),
            "negative_list": string(
                "true/false、是/否、yes/no、on/off、1/0（不分大小写；空 = false）",
                pattern=r"^\s*(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[Yy][Ee][Ss]|[Nn][Oo]"
                r"|[Oo][Nn]|[Oo][Ff][Ff]|1|0|是|否)?\s*$",
            ),
            "reported_at": instant(),
            "photos": array(file_field("照片文件（字段名 photos、photo 或 photos[]）")),
        },
    )


def _paging() -> list[dict]:
    return paging(100, 1000)


ISSUE_ID = path("issue_id", "问题编号")


def paths(config: Mapping[str, Any]) -> dict[str, Any]:
    issue = answer(ref("issue"), "问题（GeoJSON Feature）")
    transition_body = obj(
        {"to": enum(ISSUE_STATUSES, "目标状态")},
        {
            "from": enum(ISSUE_STATUSES, "期望的当前状态（乐观并发：不符时 409）"),
            "note": string("说明（不予立案、改派、整改反馈、返工时必填）"),
            "leader_id": integer("交办对象（交办、改派时必填）"),
            "photos": array(string("base64 或 data: URL"), "整改后照片（整改反馈至少 1 张）"),
        },
    )
    transition_multipart = obj(
        {"to": enum(ISSUE_STATUSES)},
        {
            "from": enum(ISSUE_STATUSES),
            "note": string(),
            "leader_id": integer(),
            "photos": array(file_field("照片文件")),
        },
    )
    return {
        "/collections/issues/items": {
            "post": op(
                TAG,
                "report_issue",
                "上报问题",
                "issues.report",
                {
                    "201": answer(
                        ref("issue"),
                        "已上报：问题及其自动归属（包保领导、责任单位）",
                        headers={"Location": "问题在 issues 集合中的地址"},
                    )
                },
                description="JSON（扁平对象或 GeoJSON Feature，照片为 base64）或 "
                "multipart/form-data（照片为文件）。"
                "位置须在服务范围内，否则 422（field=geometry）。"
                "可用查询参数 coord_sys 代替字段。令牌范围可限定为 `issues.report:issues`。"
                "补录 reported_at、设定 severity 或 negative_list 需要 `issues.set_report_meta`"
                "（创文办；对接令牌须在范围中列出），否则 403（field 指明字段）。",
                parameters=[
                    query("coord_sys", "坐标系（正文未给时）", enum(COORD_SYSTEMS)),
                ],
                body={
                    "required": True,
                    "content": {
                        JSON: {
                            "schema": {"oneOf": [ref("issueReport"), ref("issueReportFeature")]}
                        },
                        GEOJSON: {"schema": ref("issueReportFeature")},
                        "multipart/form-data": {"schema": _multipart_report(config)},
                    },
                },
                errors=(413, 415, 422),
            )
        },
        "/issues/{issue_id}": {
            "get": op(
                TAG,
                "get_issue",
                "一个问题：归属规则、时间线、照片、可执行的流转",
                "issues.read",
                {"200": issue},
                parameters=[ISSUE_ID],
                errors=(404,),
                description="看不到（不在账号范围内）的问题与不存在的问题一样回答 404。",
            )
        },
        "/issues/{issue_id}/transitions": {
            "post": op(
                TAG,
                "transition_issue",
                "问题流转（立案、交办、整改反馈、复核销号、返工…）",
                ["issues.read", "issues.dispatch", "issues.fix", "issues.verify"],
                {"200": answer(ref("issueTransitionResult"), "流转后的问题")},
                description="每个流转所需的权限不同（先需 issues.read 看到问题）："
                f"{_MOVES}。不允许的流转回答 409，detail.allowed 列出当前可执行的流转。",
                parameters=[ISSUE_ID],
                body={
                    "required": True,
                    "content": {
                        JSON: {"schema": transition_body},
                        "multipart/form-data": {"schema": transition_multipart},
                    },
                },
                errors=(404, 409, 415, 422),
            )
        },
        "/issues/unassigned": {
            "get": op(
                TAG,
                "list_unassigned_issues",
                "待派遣队列：没有地点认领或地点没有包保领导的未办结问题",
                "issues.dispatch",
                {"200": answer(paged("issues", ref("issueSummary")))},
                parameters=_paging(),
                errors=(400,),
            )
        },
        "/issues/{issue_id}/dispatch": {
            "post": op(
                TAG,
                "dispatch_issue",
                "从待派遣队列交办（已上报的问题先立案）",
                "issues.dispatch",
                {"200": issue},
                parameters=[ISSUE_ID],
                body=json_body(
                    obj(
                        {"leader_id": integer("交办对象（在岗领导）", minimum=1)},
                        {"note": string("说明")},
                    ),
                ),
                errors=(404, 409, 415, 422),
            )
        },
        "/issues/overdue": {
            "get": op(
                TAG,
                "list_overdue_issues",
                "超期未办结的问题（账号范围内）",
                "issues.read",
                {"200": answer(paged("issues", ref("issueSummary")))},
                parameters=_paging(),
                errors=(400,),
            )
        },
        "/issues/{issue_id}/duplicates": {
            "get": op(
                TAG,
                "list_issue_duplicates",
                "可能重复的问题",
                "issues.read",
                {"200": answer(obj({"candidates": array(ref("duplicateCandidate"))}))},
                parameters=[ISSUE_ID],
                errors=(404,),
            )
        },
        "/issues/{issue_id}/merge": {
            "post": op(
                TAG,
                "merge_issue",
                "把本问题作为重复问题并入主问题",
                "issues.dispatch",
                {"200": issue},
                parameters=[ISSUE_ID],
                body=json_body(obj({"into": integer("主问题编号")}, {"note": string()})),
                errors=(404, 409, 415, 422),
                description="只有已上报、已立案的问题可以并入（否则 409）。",
            )
        },
        "/photos/{photo_id}": {
            "get": op(
                TAG,
                "get_issue_photo",
                "问题照片（thumb=1 取缩略图）",
                "issues.read",
                {
                    "200": {
                        "description": "图片",
                        "content": {
                            "image/jpeg": {"schema": string(format="binary")},
                            "image/png": {"schema": string(format="binary")},
                        },
                    }
                },
                parameters=[
                    path("photo_id", "照片编号"),
                    query("thumb", "1：缩略图（JPEG）", enum(["0", "1"])),
                ],
                errors=(404,),
            )
        },
        "/attribution": {
            "get": op(
                TAG_ATTRIBUTION,
                "preview_attribution",
                "某点归谁管：在此上报问题将归属的地点、包保领导和责任单位（不写入任何数据）",
                ["issues.report", "assignments.read"],
                {"200": answer(ref("attributionPreview"))},
                description="两种权限有其一即可。与上报问题的检查和归属完全一致；"
                "点在服务范围之外回答 422（field=geometry），"
                "参数缺失、非数字或超出经纬度范围回答 400。"
                "不能上报问题的账号（只读）只能查询其查看范围内的点，范围外回答 404；"
                "领导电话只给可查看包保关系（assignments.read）的账号。",
                parameters=[
                    query("lon", "经度", number(minimum=-180, maximum=180), True),
                    query("lat", "纬度", number(minimum=-90, maximum=90), True),
                    query(
                        "at",
                        "按此时刻的包保关系（ISO 8601，须带时区；默认现在，不晚于现在）",
                        instant(),
                    ),
                    query("coord_sys", "坐标系（默认 wgs84）", enum(COORD_SYSTEMS)),
                ],
                errors=(400, 404, 422),
            )
        },
    }
