"""OpenAPI paths of /api/assessment (点位 and 测评, geoservice/api/assessment.py)."""

from __future__ import annotations

from typing import Any

from geoservice.api.openapi_kit import (
    XLSX,
    answer,
    array,
    boolean,
    download,
    enum,
    file_field,
    free,
    integer,
    json_body,
    multipart,
    number,
    obj,
    path,
    query,
    string,
)
from geoservice.api.openapi_kit import op as _op
from geoservice.assessment.scores import GROUPINGS

TAG = "点位与测评"
TAG_TEXT = (
    "点位类别（数据定义，含属性）、点位、点位清单 Excel、二维码、测评体系（版本→项目→内容→标准）、"
    "模拟测评轮次与结果、得分与排名。输入错误 422（field 指出字段），重复提交或已使用 409，"
    "请求体不是 JSON 对象 400，非 JSON 415"
)
READ_LAYERS = "layers.read"
READ = "rankings.read"
WRITE = "layers.write"
RECORD = "issues.report"

KIND_BODY = obj(
    {"code": string("小写英文代码"), "name": string("中文名称")},
    {
        "geometry_type": enum(["point", "polygon"]),
        "colour": string("#RRGGBB"),
        "icon": string(),
        "claim_radius_m": number("认领半径（米）"),
        "precedence": integer("归属优先级"),
        "retired": boolean("停用"),
        "attributes": array(
            obj(
                {"name": string(), "type": enum(["text", "integer", "choice", "date"])},
                {"title": string(), "required": boolean(), "choices": array(string())},
            )
        ),
    },
)
SITE_BODY = obj(
    {"kind": string("类别代码或名称"), "code": string(), "name": string()},
    {
        "lon": number(),
        "lat": number(),
        "coord_sys": enum(["wgs84", "gcj02"]),
        "geometry": free("GeoJSON 几何（WGS-84）"),
        "address": string(),
        "community_code": string(),
        "attributes": free("类别属性（按类别定义校验）"),
    },
)
TREE_BODY = obj(
    {"name": string("版本名称"), "items": array(free("项目 {code, title, contents: [...]}"))},
    {"note": string()},
)
RESULTS_BODY = obj(
    {"site_id": integer(), "results": array(
        obj({"standard_id": integer(), "outcome": enum(["合格", "不合格", "不适用", "pass",
                                                        "fail", "na"])},
            {"note": string(), "photo": string("base64 或 data: URL；不合格必填")})
    )},
    {"lon": number("签到经度"), "lat": number("签到纬度")},
)  # fmt: skip
OF = query("of", "分组：" + "、".join(f"{k}（{v}）" for k, v in GROUPINGS.items()), string())
KEY = query("key", "分组中的一项（编号，none 为未归属）", string())


def op(operation_id: str, summary: str, permission: str, responses: dict, **kw: Any):
    return _op(TAG, operation_id, summary, permission, responses, **kw)


def paths(config: Any = None) -> dict[str, Any]:
    ok = answer
    kind_id = path("kind_id", "类别编号")
    site_id = path("site_id", "点位编号")
    version_id = path("version_id", "版本编号")
    round_id = path("round_id", "轮次编号")
    upload = multipart(obj({"file": file_field(".xlsx")}))
    return {
        "/assessment/kinds": {
            "get": op("list_site_kinds", "点位类别列表", READ_LAYERS, {"200": ok(free())}),
            "post": op(
                "create_site_kind", "新建点位类别", WRITE, {"201": ok(free(), "已创建")},
                body=json_body(KIND_BODY), errors=(409, 415, 422),
            ),
        },
        "/assessment/kinds/{kind_id}": {
            "get": op("get_site_kind", "一个点位类别", READ_LAYERS, {"200": ok(free())},
                      parameters=[kind_id], errors=(404,)),
            "patch": op("update_site_kind", "修改或停用点位类别", WRITE, {"200": ok(free())},
                        parameters=[kind_id], body=json_body(KIND_BODY),
                        errors=(404, 409, 415, 422)),
            "delete": op("delete_site_kind", "删除未使用的点位类别", WRITE,
                         {"204": ok(None, "已删除")}, parameters=[kind_id], errors=(404, 409)),
        },
        "/assessment/sites": {
            "post": op("create_site", "新建点位", WRITE, {"201": ok(free(), "已创建")},
                       body=json_body(SITE_BODY), errors=(409, 415, 422)),
        },
        "/assessment/sites/{site_id}": {
            "get": op("get_site", "一个点位", READ_LAYERS, {"200": ok(free())},
                      parameters=[site_id], errors=(404,)),
            "patch": op("update_site", "修改点位", WRITE, {"200": ok(free())},
                        parameters=[site_id], body=json_body(SITE_BODY),
                        errors=(404, 409, 415, 422)),
            "delete": op("delete_site", "删除点位（无包保、问题、测评时）", WRITE,
                         {"204": ok(None, "已删除")}, parameters=[site_id], errors=(404, 409)),
        },
        "/assessment/sites/{site_id}/qr": {
            "get": op("site_qr", "点位二维码（扫码上报）", READ_LAYERS,
                      {"200": answer({"type": "string", "format": "binary"}, "PNG 或 SVG",
                                     "image/png")},
                      parameters=[site_id, query("format", "png 或 svg", string())],
                      errors=(404,)),
        },
        "/assessment/sites/import": {
            "post": op("import_site_list", "导入点位清单 xlsx 或 GeoJSON（全部或全不）", WRITE,
                       {"200": ok(free("导入报告"))}, body=upload, errors=(413, 415, 422)),
        },
        "/assessment/sites/export": {
            "get": op("export_site_list", "导出点位清单", READ_LAYERS,
                      {"200": download(XLSX, "点位清单.xlsx")},
                      parameters=[query("kind", "类别代码", string())]),
        },
        "/assessment/standards": {
            "get": op("list_standard_versions", "测评体系版本列表", READ, {"200": ok(free())}),
            "post": op("create_standard_version", "新建测评体系版本（JSON 树或 Excel）", WRITE,
                       {"201": ok(free(), "已创建")}, body=json_body(TREE_BODY),
                       errors=(409, 415, 422)),
        },
        "/assessment/standards/{version_id}": {
            "get": op("get_standard_version", "一个版本的测评体系", READ, {"200": ok(free())},
                      parameters=[version_id], errors=(404,)),
            "put": op("replace_standard_version", "改写未使用的版本（已有结果 409）", WRITE,
                      {"200": ok(free())}, parameters=[version_id], body=json_body(TREE_BODY),
                      errors=(404, 409, 415, 422)),
            "delete": op("delete_standard_version", "删除未用于测评的版本", WRITE,
                         {"204": ok(None, "已删除")}, parameters=[version_id],
                         errors=(404, 409)),
        },
        "/assessment/standards/{version_id}/copy": {
            "post": op("copy_standard_version", "复制为新版本", WRITE,
                       {"201": ok(free(), "已创建")}, parameters=[version_id],
                       body=json_body(obj({"name": string()})), errors=(404, 409, 415, 422)),
        },
        "/assessment/standards/{version_id}/export": {
            "get": op("export_standard_version", "导出测评体系 Excel", READ,
                      {"200": download(XLSX, "测评体系.xlsx")}, parameters=[version_id],
                      errors=(404,)),
        },
        "/assessment/rounds": {
            "get": op("list_rounds", "测评轮次列表", READ, {"200": ok(free())}),
            "post": op("create_round", "新建测评轮次（全部点位或按类别按街道抽样）", WRITE,
                       {"201": ok(free(), "已创建")},
                       body=json_body(obj(
                           {"name": string(), "starts_on": string(format="date"),
                            "ends_on": string(format="date"), "version_id": integer()},
                           {"sample_per_kind": integer(), "seed": integer(),
                            "checkin_radius_m": number(), "inspector_id": integer(),
                            "site_ids": array(integer())})),
                       errors=(404, 409, 415, 422)),
        },
        "/assessment/rounds/{round_id}": {
            "get": op("get_round", "一个测评轮次", READ, {"200": ok(free())},
                      parameters=[round_id], errors=(404,)),
        },
        "/assessment/rounds/{round_id}/sites": {
            "get": op("round_sites", "轮次的点位与进度（mine=1：分配给我的）", READ,
                      {"200": ok(free())},
                      parameters=[round_id, query("mine", "1：只看分配给我的", string())],
                      errors=(404,)),
        },
        "/assessment/rounds/{round_id}/inspectors": {
            "post": op("assign_round_inspectors", "分配测评员", WRITE, {"200": ok(free())},
                       parameters=[round_id],
                       body=json_body(obj({"inspector_id": integer(),
                                           "site_ids": array(integer())})),
                       errors=(404, 415, 422)),
        },
        "/assessment/rounds/{round_id}/sites/{site_id}": {
            "get": op("round_site_sheet", "一个点位的适用标准与结果", RECORD,
                      {"200": ok(free())}, parameters=[round_id, site_id], errors=(404,)),
        },
        "/assessment/rounds/{round_id}/results": {
            "post": op("submit_round_results", "录入一个点位的测评结果（全部成功或全部不写入）",
                       RECORD, {"201": ok(free(), "已录入")}, parameters=[round_id],
                       body=json_body(RESULTS_BODY), errors=(404, 409, 413, 415, 422)),
        },
        "/assessment/results/{result_id}/correction": {
            "post": op("correct_round_result", "更正测评结果（新记录，须说明理由）",
                       "issues.dispatch", {"201": ok(free(), "已更正")},
                       parameters=[path("result_id", "结果编号")],
                       body=json_body(obj({"outcome": string(), "reason": string()},
                                          {"note": string(), "photo": string()})),
                       errors=(404, 409, 415, 422)),
        },
        "/assessment/rounds/{round_id}/scores": {
            "get": op("round_scores", "得分、点位达标率、负面清单、后三名与分数线", READ,
                      {"200": ok(free())}, parameters=[round_id, OF], errors=(404,)),
        },
        "/assessment/rounds/{round_id}/failures": {
            "get": op("round_failures", "不合格标准明细（含照片、问题、上轮情况）", READ,
                      {"200": ok(free())}, parameters=[round_id, OF, KEY], errors=(404,)),
        },
        "/assessment/trend": {
            "get": op("assessment_trend", "各轮得分与达标率走势", READ, {"200": ok(free())},
                      parameters=[OF, KEY]),
        },
    }  # fmt: skip
