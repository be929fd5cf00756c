"""OpenAPI paths of /api/assessment (点位 and 测评, geoservice/api/assessment.py)."""

from __future__ import annotations

from typing import Any

from geoservice.api.openapi_kit import (
    NOT_BLANK,
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
    mapping,
    multipart,
    nullable,
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


# Texts as the code reads them: not blank (spaces around are trimmed), at most `n` characters.
def text(n: int, description: str | None = None) -> dict[str, Any]:
    return string(description, minLength=1, maxLength=n, pattern=NOT_BLANK)


ID = integer(minimum=1, maximum=2**31 - 1)
KIND_CODE = string(
    "小写字母开头的英文、数字或下划线（最多 32 个字符）", pattern=r"^\s*[a-z][a-z0-9_]{0,31}\s*$"
)
KIND_BODY = obj(
    {"code": KIND_CODE, "name": text(50, "中文名称")},
    {
        "geometry_type": nullable(enum(["point", "polygon"], "缺省 point")),
        "colour": nullable(string("#RRGGBB，缺省 #1565c0", pattern=r"^(#[0-9a-fA-F]{6})?$")),
        "icon": nullable(string("小写字母、数字和连字符", pattern=r"^[a-z0-9-]{0,32}$")),
        "claim_radius_m": number("认领半径（米）", minimum=1, maximum=1000),
        "precedence": integer("归属优先级", minimum=0, maximum=1000),
        "retired": boolean("停用"),
        "attributes": nullable(
            array(
                obj(
                    {
                        "name": string(
                            "小写字母开头的英文、数字或下划线（不能用保留字，不能重复）",
                            pattern=r"^\s*[a-z][a-z0-9_]{0,31}\s*$",
                        )
                    },
                    {
                        "title": nullable(string()),
                        "type": nullable(enum(["text", "integer", "choice", "date"], "缺省 text")),
                        "required": boolean(),
                        "choices": nullable(
                            array(string(pattern=NOT_BLANK), "选项（choice 类必填，至少一项）")
                        ),
                    },
                ),
                "属性定义（最多 30 个）",
                maxItems=30,
            )
        ),
    },
)
SITE_BODY = obj(
    {
        "kind": text(200, "类别代码或名称（须为在用的类别）"),
        "code": string("1–64 位字母、数字、下划线或连字符", pattern=r"^\s*[A-Za-z0-9_-]{1,64}\s*$"),
        "name": text(200),
    },
    {
        "lon": number(minimum=-180, maximum=180),
        "lat": number(minimum=-90, maximum=90),
        "coord_sys": nullable(enum(["wgs84", "gcj02"], "缺省 wgs84")),
        "geometry": nullable(obj({"type": string()}, None, "GeoJSON 几何（WGS-84），或给 lon/lat")),
        "address": nullable(string(maxLength=200)),
        "community_code": nullable(string("社区代码（须存在）")),
        "attributes": nullable(mapping(free(), "类别属性（按类别定义校验）")),
    },
)
STANDARD = obj(
    {
        "code": text(32),
        "text": text(2000),
        "score": number(exclusiveMinimum=True, minimum=0),
        "kinds": array(text(200), "适用点位类别（名称或代码，须存在）", minItems=1),
        "category": text(200, "问题类别（须为已配置的类别）"),
    },
    {"negative_list": free("是否负面清单（是/否）")},
)
TREE_BODY = obj(
    {
        "name": text(100, "版本名称"),
        "items": array(
            obj(
                {
                    "code": text(32),
                    "title": text(200),
                    "contents": array(
                        obj({"code": text(32), "title": text(200), "standards": array(STANDARD)})
                    ),
                }
            ),
            "测评项目（至少一条标准）",
            minItems=1,
        ),
    },
    {"note": nullable(string(maxLength=2000))},
)
RESULTS_BODY = obj(
    {"site_id": integer(), "results": array(
        obj({"standard_id": integer(), "outcome": enum(["合格", "不合格", "不适用", "pass",
                                                        "fail", "na"])},
            {"note": string(), "photo": string("base64 或 data: URL；不合格必填")})
    )},
    {"lon": number("签到经度"), "lat": number("签到纬度")},
)  # fmt: skip
OF = query("of", "分组：" + "、".join(f"{k}（{v}）" for k, v in GROUPINGS.items()), enum(GROUPINGS))
KEY = query(
    "key",
    "分组中的一项（编号，none 为未归属；不给 of 时不用）",
    string(pattern=r"^(none|[0-9]{1,9})?$"),
    empty=True,
)


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
                      {"200": {"description": "PNG 或 SVG", "content": {
                          m: {"schema": {"type": "string", "format": "binary"}}
                          for m in ("image/png", "image/svg+xml")}}},
                      parameters=[site_id,
                                  query("format", "png（缺省）或 svg", enum(["png", "svg"]))],
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
                           {"name": text(100, "轮次名称（不能重复）"),
                            "starts_on": string(format="date"),
                            "ends_on": string("不早于 starts_on", format="date"),
                            "version_id": ID},
                           {"sample_per_kind": nullable(integer("每类每街道抽样数，0 或不给为全部",
                                                                minimum=0, maximum=100000)),
                            "seed": nullable(integer(minimum=0, maximum=2**62)),
                            "checkin_radius_m": number(minimum=1, maximum=10000),
                            "inspector_id": nullable(ID),
                            "site_ids": nullable(array(integer(minimum=1, maximum=2**62),
                                                       "手选点位（须存在）", minItems=1))})),
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
                       errors=(404, 409, 415, 422)),
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
