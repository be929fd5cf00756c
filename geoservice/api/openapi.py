"""The OpenAPI 3.0 document, generated from the collection catalogue (each collection's paths and
schemas: openapi_features.py) and the families in the other openapi_*.py."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, render_template, request

import geoservice.api.openapi_notifications as openapi_notifications
from geoservice.api import (
    bp,
    openapi_assessment,
    openapi_fieldwork,  # issue 16
    openapi_issues,
    openapi_people,
    openapi_reports,
    openapi_rules,
)
from geoservice.api.features import json_response
from geoservice.api.openapi_features import (
    ERROR,
    collection_paths,
    feature_input_schema,
    feature_patch_schema,
    feature_schema,
    param,
)
from geoservice.api.openapi_kit import MAX_OFFSET, documented_paths, error_responses, finish
from geoservice.edge.access import catalogue, signed_in
from geoservice.edge.params import CRS84, HTML, OPENAPI, output_format, single_args
from geoservice.edge.vocabularies import config_in_force
from geoservice.registry import layers

# Tags of the endpoints outside the collections, in the order the HTML page lists them.
TAGS = {
    "服务": "入口、标准类、集合列表、本说明",
    openapi_issues.TAG: (
        "问题的上报、立案、交办、整改反馈、复核销号、返工，待派遣与超期队列，重复与合并。"
        "写入：请求体既非 JSON 也非表单 415，JSON 语法错误 400，字段取值错误 422，"
        "状态不允许 409"
    ),
    openapi_issues.TAG_ATTRIBUTION: "某点归谁管（上报前预览归属）",
    openapi_people.TAG: (
        "责任单位、包保领导、包保记录（含历史）、覆盖检查、Excel 清单。"
        "输入错误（请求体不是 JSON 对象、字段取值错误、参数错误）一律 400；"
        "冲突 409；Excel 清单有被拒的行 422（detail 为逐行报告），文件过大 413"
    ),
    openapi_reports.TAG_AREAS: (
        "行政区划与服务范围。导入：文件格式不支持 415，表单字段错误 400，"
        "任何区划有错 422（全部不写入）"
    ),
    openapi_reports.TAG_RANKINGS: "周通报、季排名：领导、单位、网格等的得分与名次",
    openapi_reports.TAG_MAP: "地图页与大屏用的统计和切片",
    openapi_people.TAG_ACCOUNTS: (
        "当前账号与账号管理。新建账号：请求体不是 JSON 对象、缺字段或类型错 400，"
        "用户名已存在 409，用户名、口令、区划或领导不合规 422（field 指出字段）"
    ),
    openapi_people.TAG_AUDIT: "操作日志",
    openapi_fieldwork.TAG: openapi_fieldwork.TAG_TEXT,
    openapi_assessment.TAG: openapi_assessment.TAG_TEXT,
    openapi_notifications.TAG: openapi_notifications.DESCRIPTION,
    openapi_notifications.TAG_INTAKE: openapi_notifications.DESCRIPTION_INTAKE,
}


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "tags": ["服务"],
                "summary": "入口",
                "operationId": "getLandingPage",
                "parameters": [{"$ref": "#/components/parameters/f"}],
                "responses": {"200": {"description": "入口链接"}},
            }
        },
        "/conformance": {
            "get": {
                "tags": ["服务"],
                "summary": "符合的标准类",
                "operationId": "getConformance",
                "parameters": [{"$ref": "#/components/parameters/f"}],
                "responses": {"200": {"description": "conformsTo"}},
            }
        },
        "/collections": {
            "get": {
                "tags": ["服务"],
                "summary": "集合列表",
                "operationId": "getCollections",
                "parameters": [{"$ref": "#/components/parameters/f"}],
                "responses": {
                    "200": {"description": "集合"},
                    "304": {"description": "未修改：If-None-Match 与当前 ETag 相同"},
                },
            }
        },
        "/openapi": {
            "get": {
                "tags": ["服务"],
                "summary": "本接口说明（OpenAPI 3.0；f=html 为网页）",
                "operationId": "getOpenAPI",
                "parameters": [
                    param("f", "输出格式", {"type": "string", "enum": ["json", "html"]})
                ],
                "responses": {
                    "200": {
                        "description": "OpenAPI 文档",
                        "content": {OPENAPI: {"schema": {"type": "object"}}, HTML: {}},
                    },
                    "400": ERROR,
                },
            }
        },
    }
    schemas: dict[str, Any] = {
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["href", "rel", "type"],
                "properties": {
                    "href": {"type": "string"},
                    "rel": {"type": "string"},
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                },
            },
        },
        "geometryGeoJSON": {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {
                    "type": "string",
                    "enum": [
                        "Point",
                        "MultiPoint",
                        "LineString",
                        "MultiLineString",
                        "Polygon",
                        "MultiPolygon",
                    ],
                },
                "coordinates": {"type": "array", "items": {}},
            },
        },
        "error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string", "description": "中文说明"},
                "detail": {},
                "field": {"type": "string"},
            },
        },
    }
    for coll in catalogue():
        paths.update(collection_paths(coll))
        schemas[f"{coll.id}Feature"] = feature_schema(coll)
        if coll.writable:
            schemas[f"{coll.id}FeatureInput"] = feature_input_schema(coll)
            schemas[f"{coll.id}FeaturePatch"] = feature_patch_schema(coll)
    config = config_in_force()  # the vocabularies in force now in the enums
    # The rest of /api, merged per path and method (the issues collection's POST is the
    # issue report, next to the generic GET of that collection).
    for key, ops in {
        **openapi_issues.paths(config),
        **openapi_people.paths(config),
        **openapi_reports.paths(layers(), catalogue()),
        **openapi_fieldwork.paths(config),
        **openapi_assessment.paths(config),
        **openapi_notifications.paths(config),
        **documented_paths(current_app),  # operations declared next to their routes
        **openapi_rules.paths(config),
    }.items():
        existing = paths.setdefault(key, {})
        clash = set(existing) & set(ops)
        assert not clash, f"{key} {clash} documented twice"
        existing.update(ops)
    schemas.update(openapi_issues.schemas(config))
    schemas.update(openapi_people.schemas(config))
    schemas.update(openapi_reports.schemas(layers()))
    schemas.update(openapi_reports.map_schemas())
    schemas.update(openapi_notifications.schemas(config))
    schemas.update(openapi_rules.schemas())
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "创文包保 GIS 数据接口",
            "version": "1.0.0",
            "description": "OGC API – Features（第 1 部分核心、GeoJSON、HTML、OpenAPI 3.0；"
            "第 4 部分新增/替换/修改/删除），以及问题流转、责任归属、包保责任、行政区划、"
            "排名通报、地图数据、账号与操作日志接口。所有接口需 API 令牌（Bearer）或登录会话；"
            "以会话写入须带 X-CSRFToken 请求头。每个接口所需的权限见其说明（x-permission）。"
            "错误一律为 JSON：{error 中文说明, detail 细节, field 出错的字段}。"
            "查询参数：每个接口只接受其列出的参数，未列出的或重复出现的参数一律 400，"
            "field 为该参数名，detail.allowed 列出可用参数（拼错的过滤条件不会被悄悄忽略）。"
            "分页的列表一律用 limit/offset：limit 为 1 至该接口上限的整数（0、非整数或超过"
            "上限 400；OGC 要素列表按标准把超过上限的 limit 截为上限），offset 为非负整数；"
            "应答带 numberMatched（总条数）与 numberReturned（本页条数）。"
            "输入错误的状态码按接口族区分，见各分组（tag）的说明：要素写入 GeoJSON 结构错误 400、"
            "内容不合规 422；问题写入 415/400/422；包保责任 400；账号 400/422；区划导入 "
            "415/400/422。"
            "任何文本（查询参数、表单字段、JSON 的键与值、上传文件名）不得含 NUL 字符"
            "（U+0000），JSON 文本也不得含不成对的代理项（\\ud800–\\udfff）：数据库无法保存，"
            "一律 400，field 指出所在字段。",
        },
        "servers": [{"url": request.url_root.rstrip("/") + "/api"}],
        "security": [{"bearer": []}, {"session": []}],
        "tags": [
            *({"name": c.id, "description": c.title} for c in catalogue()),
            *({"name": name, "description": text} for name, text in TAGS.items()),
        ],
        "paths": finish(paths),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "API 令牌：Authorization: Bearer <令牌>（管理页面或 "
                    "flask users token 生成；可用范围 scopes 收窄权限）。系统对接首选。",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": config["SESSION_COOKIE_NAME"],
                    "description": "浏览器登录会话（/login）。",
                },
                "csrf": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRFToken",
                    "description": "以会话 cookie 写入（POST/PUT/PATCH/DELETE）时必带；"
                    "值见 GET /api/me 的 csrf_token 或页面的 meta csrf-token。令牌调用不需要。",
                },
            },
            "schemas": schemas,
            "responses": error_responses(),
            "parameters": {
                "f": param(
                    "f", "输出格式", {"type": "string", "enum": ["json", "geojson", "html"]}
                ),
                "limit": param(
                    "limit",
                    "每页条数（默认 100，最多 10000，更大的值按 10000 处理）",
                    {"type": "integer", "minimum": 1, "default": 100},
                ),
                "offset": param(
                    "offset",
                    f"跳过的条数（0–{MAX_OFFSET}）",
                    {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
                ),
                "bbox": param(
                    "bbox",
                    "范围：最小经度,最小纬度,最大经度,最大纬度（CRS84）",
                    {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}},
                ),
                "bbox-crs": param(
                    "bbox-crs",
                    "bbox 的坐标系（只支持 CRS84）",
                    {"type": "string", "enum": [CRS84, "CRS84", "EPSG:4326"]},
                ),
                "crs": param(
                    "crs",
                    "输出坐标系（只支持 CRS84：经度、纬度，即 storageCrs）",
                    {"type": "string", "enum": [CRS84, "CRS84"]},
                ),
                "datetime": param(
                    "datetime",
                    "时间（RFC 3339 时间或 YYYY-MM-DD 日期）或时间段 开始/结束"
                    "（任一端可为 .. 或空，开始不晚于结束），如 2026-11-01T00:00:00+08:00/..",
                    {"type": "string", "format": "datetime-interval", "minLength": 1},
                ),
            },
        },
    }


@bp.get("/openapi")
@signed_in
def openapi_document():
    fmt = output_format(single_args(["f"]))
    doc = document()
    if fmt == "html":
        return Response(render_template("api/openapi.html", doc=doc), mimetype=HTML)
    return json_response(doc, "application/vnd.oai.openapi+json;version=3.0")
