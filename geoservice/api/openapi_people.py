"""OpenAPI: 包保 (units, leaders, assignments, who was responsible, coverage, Excel roster),
accounts (/me, /users) and the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geoservice.accounts.permissions import ROLE_ACTIONS
from geoservice.api.openapi_kit import (
    GEOJSON,
    XLSX,
    answer,
    array,
    boolean,
    download,
    enum,
    file_field,
    free,
    instant,
    integer,
    json_body,
    limit_param,
    mapping,
    multipart,
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
from geoservice.catalogue.catalogue import TEXT_PATTERN
from geoservice.responsibility import values
from geoservice.responsibility.coverage import DEFAULT_FEATURE_LIMIT

TAG = "包保责任"
TAG_ACCOUNTS = "账号"
TAG_AUDIT = "操作日志"
READ, WRITE = "assignments.read", "assignments.write"

# Instants of the 包保 API: a date (local midnight) or an ISO 8601 time (no zone = local).
MOMENT = string(
    "日期（当地 0 时）或 ISO 8601 时间，如 2026-03-01 或 2026-03-01T08:30:00+08:00；"
    "不带时区按本地时区",
    format="iso-instant",
)
COUNTY = "仅限不限定区域的账号（否则 403）。"
OUT_OF_SCOPE = "账号范围外的记录与不存在的一样回答 404。"


# Names as geoservice.responsibility checks them (after dropping spaces): a person's name is
# Han characters, parts joined by "·", 2–25 characters; a unit's name 2–60 characters of
# Han, digits, Latin letters, full-width brackets, "·、-—", with at least one Han character.
_HAN = values.HAN_RANGES
PERSON_NAME = string(
    "中文姓名（2–25 字的汉字，少数民族姓名可用“·”分隔）",
    minLength=2,
    maxLength=25,
    pattern=rf"^[{_HAN}]+(?:·[{_HAN}]+)*$",
)
# geoservice.responsibility.values.normalise_phone: a mainland mobile (+86 allowed) or a
# landline with its area code and an optional extension; empty for none.
PHONE_PATTERN = (
    r"^(?:(?:\+?86|0086)?-?1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(?:(?:-|转|#|ext\.?)\d{1,6})?)?$"
)
_UNIT_CHARS = rf"[{_HAN}0-9A-Za-z（）·、\-—]"
UNIT_NAME = string(
    "单位名称（2–60 字：汉字、数字、字母、全角括号、“·、-—”，至少一个汉字）",
    minLength=2,
    maxLength=60,
    pattern=rf"^{_UNIT_CHARS}*[{_HAN}]{_UNIT_CHARS}*$",
)


def _layer_names() -> list[str]:
    """What a `layer` field accepts: a layer's name, collection id or Chinese title."""
    from geoservice.registry import layers

    return sorted({n for spec in layers() for n in (spec.name, spec.collection, spec.title)})


def schemas(config: Mapping[str, Any]) -> dict[str, Any]:
    levels, roles = list(config["LEADER_LEVELS"]), list(config["ASSIGNMENT_ROLES"])
    layer_names = _layer_names()
    unit = {
        "id": integer(),
        "name": string("单位名称"),
        "is_lead": boolean("牵头单位"),
        "active": boolean(),
    }
    leader = {
        "id": integer(),
        "name": string("姓名"),
        "title": text_or_null("职务"),
        "unit_id": nullable(integer()),
        "unit": text_or_null("单位名称"),
        "phone": text_or_null("电话"),
        "level": enum(levels, "层级"),
        "is_unit_head": boolean("单位负责人"),
        "active": boolean(),
    }
    place = obj(
        {
            "id": integer("地点（要素）编号"),
            "layer": string(),
            "layer_title": string(),
            "code": text_or_null(),
            "name": text_or_null(),
        }
    )
    assignment = {
        "id": integer(),
        "leader_id": integer(),
        "leader": string("领导姓名"),
        "unit": text_or_null("单位名称"),
        "place": place,
        "role": enum(roles, "包保角色"),
        "is_primary": boolean("主要负责人"),
        "valid_from": instant(),
        "valid_to": nullable(instant("结束时间（在岗为 null）")),
        "active": boolean(),
        "note": text_or_null(),
    }
    leader_fields = {
        "title": string("职务", maxLength=values.TITLE_MAX_LENGTH),
        "phone": nullable(string("手机或座机（空为无）", pattern=PHONE_PATTERN)),
        "unit_id": nullable(integer("单位编号")),
        "is_unit_head": boolean(),
    }
    return {
        "unit": obj(unit),
        "unitRow": obj({**unit, "leader_count": integer("在岗领导数")}),
        "unitDetail": obj({**unit, "leaders": array(ref("leaderRow"))}),
        "leader": obj(leader),
        "leaderRow": obj({**leader, "active_assignments": integer("在岗包保数")}),
        "leaderDetail": obj({**leader, "assignments": array(ref("assignment"))}),
        "leaderCreate": obj({"name": PERSON_NAME, "level": enum(levels, "层级")}, leader_fields),
        "leaderUpdate": obj(
            {}, {"name": PERSON_NAME, "level": enum(levels), **leader_fields, "active": boolean()}
        ),
        "place": place,
        "assignment": obj(assignment),
        "assignmentChange": obj(
            {**assignment, "closed": array(ref("assignment"), "因此结束的原记录")}
        ),
        "assignmentCreate": {
            **obj(
                {"leader_id": integer(), "role": enum(roles, "包保角色")},
                {
                    "place_id": integer("地点编号（或用 layer 与 code）"),
                    "layer": enum(layer_names, "图层名、集合名或中文名"),
                    "code": string("要素编码", minLength=1, pattern=TEXT_PATTERN),
                    "is_primary": boolean("主要负责人（默认 true）"),
                    "valid_from": MOMENT,
                    "note": string(maxLength=values.NOTE_MAX_LENGTH),
                    "replace_primary": boolean("已有主要负责人时替换（结束其记录），否则 409"),
                },
            ),
            # The place: place_id, or layer with code.
            "anyOf": [{"required": ["place_id"]}, {"required": ["layer", "code"]}],
        },
        "rosterReport": obj(
            {
                "sheet": string(),
                "ok": boolean(),
                "dry_run": boolean(),
                "applied": boolean(),
                "counts": mapping(integer()),
                "rows": array(
                    obj(
                        {
                            "row": integer(),
                            "status": enum(["created", "unchanged", "rejected"]),
                            "leader": text_or_null(),
                            "place": text_or_null(),
                            "actions": array(string()),
                            "errors": array(string()),
                        }
                    )
                ),
            },
            {"message": string()},
        ),
        "account": obj(
            {
                "id": integer(),
                "username": string(),
                "display_name": text_or_null(),
                "role": enum(ROLE_ACTIONS),
                "area": text_or_null("限定的行政区划代码"),
                "leader_id": nullable(integer("绑定的包保领导")),
                "active": boolean(),
            }
        ),
    }


def paths(config: Mapping[str, Any]) -> dict[str, Any]:
    unit_id = path("unit_id", "单位编号")
    leader_id = path("leader_id", "领导编号")
    assignment_id = path("assignment_id", "包保记录编号")
    at = query("at", "时刻（默认现在）", MOMENT)
    history = query("history", "true：含已结束的记录", boolean(), empty=True)
    layer_names = _layer_names()
    place_query = [
        query("place_id", "地点编号（或用 layer 与 code）", integer(minimum=1)),
        query("layer", "图层名、集合名或中文名（与 code 一起用）", enum(layer_names)),
        query("code", "要素编码（与 layer 一起用）", string(minLength=1, pattern=TEXT_PATTERN)),
    ]
    end_body = json_body(
        obj({}, {"at": MOMENT, "note": string()}), "可省略（默认现在结束）", required=False
    )
    ok = answer
    return {
        "/units": {
            "get": op(
                TAG,
                "list_units",
                "责任单位列表",
                READ,
                {"200": ok(obj({"units": array(ref("unitRow"))}))},
            ),
            "post": op(
                TAG,
                "create_unit",
                "新建责任单位",
                WRITE,
                {"201": ok(ref("unit"), "已创建")},
                body=json_body(obj({"name": UNIT_NAME}, {"is_lead": boolean()})),
                errors=(409,),
            ),
        },
        "/units/{unit_id}": {
            "get": op(
                TAG,
                "get_unit",
                "一个单位及其（账号范围内的）领导",
                READ,
                {"200": ok(ref("unitDetail"))},
                parameters=[unit_id],
                errors=(404,),
            ),
            "patch": op(
                TAG,
                "update_unit",
                "修改单位（名称、牵头、停用）",
                WRITE,
                {"200": ok(ref("unit"))},
                parameters=[unit_id],
                body=json_body(
                    obj({}, {"name": string(), "is_lead": boolean(), "active": boolean()})
                ),
                errors=(404, 409),
            ),
            "delete": op(
                TAG,
                "delete_unit",
                "删除单位（仍有领导或问题记录时 409，可改为停用）",
                WRITE,
                {"204": ok(None, "已删除")},
                parameters=[unit_id],
                errors=(404, 409),
            ),
        },
        "/leaders": {
            "get": op(
                TAG,
                "list_leaders",
                "包保领导列表（账号范围内）",
                READ,
                {"200": ok(obj({"leaders": array(ref("leaderRow")), "numberReturned": integer()}))},
                parameters=[
                    query("unit_id", "单位编号", integer(), empty=True),
                    query("active", "true 在岗 / false 停用", boolean(), empty=True),
                    query("q", "姓名或单位名包含", string()),
                ],
                errors=(400,),
            ),
            "post": op(
                TAG,
                "create_leader",
                "新建包保领导",
                WRITE,
                {"201": ok(ref("leader"), "已创建")},
                body=json_body(ref("leaderCreate")),
                errors=(404,),
                description="姓名须为中文，电话须为手机或座机格式；unit_id 不存在时 404。",
            ),
        },
        "/leaders/{leader_id}": {
            "get": op(
                TAG,
                "get_leader",
                "一位领导及其全部包保记录（含历史）",
                READ,
                {"200": ok(ref("leaderDetail"))},
                parameters=[leader_id],
                errors=(404,),
                description=OUT_OF_SCOPE,
            ),
            "patch": op(
                TAG,
                "update_leader",
                "修改领导信息",
                WRITE,
                {"200": ok(ref("leader"))},
                parameters=[leader_id],
                body=json_body(ref("leaderUpdate")),
                errors=(404,),
            ),
            "delete": op(
                TAG,
                "delete_leader",
                "删除领导（有在岗包保或历史记录时 409，可改为停用）",
                WRITE,
                {"204": ok(None, "已删除")},
                parameters=[leader_id],
                errors=(404, 409),
            ),
        },
        "/leaders/{leader_id}/deactivate": {
            "post": op(
                TAG,
                "deactivate_leader",
                "停用领导：在 at 结束其全部在岗包保（历史保留）",
                WRITE,
                {"200": ok({"allOf": [ref("leader"), obj({"ended": array(ref("assignment"))})]})},
                parameters=[leader_id],
                body=json_body(obj({}, {"at": MOMENT}), required=False),
                errors=(404,),
            )
        },
        "/leaders/{leader_id}/assignments": {
            "get": op(
                TAG,
                "list_leader_assignments",
                "一位领导在某时刻的包保记录",
                READ,
                {"200": ok(obj({"assignments": array(ref("assignment"))}))},
                parameters=[leader_id, at, history],
                errors=(404,),
                description=OUT_OF_SCOPE,
            )
        },
        "/leaders/{leader_id}/features": {
            "get": op(
                TAG,
                "get_leader_features",
                "领导当前包保的地点（GeoJSON）；scope=unit 为单位负责人看本单位全部",
                READ,
                {
                    "200": ok(
                        obj(
                            {
                                "type": enum(["FeatureCollection"]),
                                "features": array(
                                    obj(
                                        {
                                            "type": enum(["Feature"]),
                                            "id": integer(),
                                            "geometry": ref("geometryGeoJSON"),
                                            "properties": obj(
                                                {
                                                    "place_id": integer(),
                                                    "layer": string(),
                                                    "layer_title": string(),
                                                    "code": text_or_null(),
                                                    "name": text_or_null(),
                                                    "roles": free("包保角色"),
                                                    "is_primary": boolean(),
                                                    "holders": free("包保人"),
                                                    "open_issues": integer(),
                                                    "overdue_issues": integer(),
                                                }
                                            ),
                                        }
                                    )
                                ),
                            },
                            {"bbox": array(number(), minItems=4, maxItems=4)},
                        ),
                        media=GEOJSON,
                    )
                },
                parameters=[
                    leader_id,
                    query("scope", "own（默认）或 unit", enum(["own", "unit"])),
                    query("layer", "只要某图层", string()),
                ],
                errors=(400, 404),
            )
        },
        "/assignments": {
            "get": op(
                TAG,
                "list_assignments",
                "包保记录（按领导、地点、时刻；账号范围内）",
                READ,
                {"200": ok(paged("assignments", ref("assignment")))},
                parameters=[
                    query("leader_id", "领导编号", integer(), empty=True),
                    *place_query,
                    at,
                    history,
                    *paging(1000, 10_000),
                ],
                errors=(400, 404),
            ),
            "post": op(
                TAG,
                "create_assignment",
                "分配包保责任",
                WRITE,
                {"201": ok(ref("assignmentChange"), "已创建（closed：被替换的原主要负责人记录）")},
                body=json_body(ref("assignmentCreate")),
                errors=(404, 409),
                description="地点用 place_id，或 layer 与 code。"
                "一个地点同一时刻只有一位主要负责人："
                "已有时 409，除非 replace_primary=true。生效时间不能晚于现在。",
            ),
        },
        "/assignments/{assignment_id}": {
            "get": op(
                TAG,
                "get_assignment",
                "一条包保记录",
                READ,
                {"200": ok(ref("assignment"))},
                parameters=[assignment_id],
                errors=(404,),
            )
        },
        "/assignments/{assignment_id}/end": {
            "post": op(
                TAG,
                "end_assignment",
                "结束包保（记录保留为历史）",
                WRITE,
                {"200": ok(ref("assignment"))},
                parameters=[assignment_id],
                body=end_body,
                errors=(404, 409),
            )
        },
        "/assignments/{assignment_id}/reassign": {
            "post": op(
                TAG,
                "reassign_assignment",
                "调整：在 at 结束原记录并由另一位领导接替",
                WRITE,
                {"201": ok(ref("assignmentChange"), "新记录（closed：结束的原记录）")},
                parameters=[assignment_id],
                body=json_body(obj({"leader_id": integer()}, {"at": MOMENT, "note": string()})),
                errors=(404, 409),
            )
        },
        "/responsible": {
            "get": op(
                TAG,
                "get_responsible",
                "某地点在某时刻由谁负责",
                READ,
                {
                    "200": ok(
                        obj(
                            {
                                "place": ref("place"),
                                "at": instant(),
                                "primary": nullable(ref("assignment")),
                                "assignments": array(ref("assignment")),
                            }
                        )
                    )
                },
                parameters=[*place_query, at],
                errors=(404,),
                description="地点用 place_id，或 layer 与 code（都没有时 400）。" + OUT_OF_SCOPE,
            )
        },
        "/coverage": {
            "get": op(
                TAG,
                "get_coverage_audit",
                "覆盖检查：未落实包保的地点、网格缝隙与重叠、闲置领导、数据完整性、层级",
                READ,
                {
                    "200": ok(
                        obj(
                            {
                                "base_layer": string(),
                                "summary": mapping(integer(), "各项问题的数量"),
                                "layers": array(free()),
                                "gaps": free("缝隙（count、area_m2、features）"),
                                "overlaps": free("重叠（count、area_m2、features）"),
                                "idle_leaders": array(free()),
                                "integrity": array(free()),
                                "hierarchy": free(),
                            }
                        )
                    )
                },
                parameters=[
                    query(
                        "min_area_m2",
                        "忽略小于此面积的缝隙/重叠（m²，0–1000000000）",
                        number(minimum=0, maximum=1e9),
                        empty=True,
                    ),
                    limit_param(DEFAULT_FEATURE_LIMIT, 10_000, "每项最多列出的要素数"),
                ],
                errors=(400,),
                description=COUNTY,
            )
        },
        "/roster.xlsx": {
            "get": op(
                TAG,
                "export_roster",
                "导出《包保责任情况一览表》（Excel）",
                READ,
                {"200": download(XLSX, "Excel 工作簿")},
                parameters=[query("unit_id", "只导出一个单位", integer(), empty=True)],
                errors=(400, 404),
                description=COUNTY,
            )
        },
        "/roster/template.xlsx": {
            "get": op(
                TAG,
                "get_roster_template",
                "包保清单导入模板（Excel）",
                READ,
                {"200": download(XLSX, "Excel 模板")},
            )
        },
        "/roster/import": {
            "post": op(
                TAG,
                "import_roster",
                "导入包保清单（Excel；全部通过才写入）",
                WRITE,
                {"200": ok(ref("rosterReport"), "逐行报告（dry_run 时未写入）")},
                parameters=[query("dry_run", "1：只检查不写入", boolean())],
                body=multipart(
                    obj(
                        {"file": file_field("Excel 文件（不超过 10 MB）")},
                        {"dry_run": boolean("true：只检查不写入")},
                    )
                ),
                errors=(422,),
                description=COUNTY
                + "有任何一行被拒绝时回答 422，detail 为逐行报告，整份清单不写入。",
            )
        },
    }
