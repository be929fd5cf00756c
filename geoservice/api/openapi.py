"""The OpenAPI 3.0 document, generated from the collection catalogue."""

from __future__ import annotations

import re
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
from geoservice.api.openapi_kit import (
    MAP_PATTERN,
    TILE_XYZ,
    documented_paths,
    error_responses,
    finish,
)
from geoservice.catalogue.catalogue import Collection
from geoservice.catalogue.validation import CODE_MAX, NAME_MAX, READ_ONLY, writable_properties
from geoservice.edge.access import catalogue, signed_in
from geoservice.edge.params import (
    CRS84,
    GEOJSON,
    HTML,
    JSON,
    MVT,
    OPENAPI,
    output_format,
    single_args,
)
from geoservice.registry import layers

ERROR = {"$ref": "#/components/responses/Error"}

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


def _param(name: str, description: str, schema: dict, required: bool = False, where="query"):
    return {
        "name": name,
        "in": where,
        "required": required,
        "description": description,
        "schema": schema,
        "style": "form",
        "explode": False,
    }


def _feature_schema(coll: Collection) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "integer"},
            "geometry": {"$ref": "#/components/schemas/geometryGeoJSON"},
            "properties": {"type": "object", "properties": dict(coll.property_schema)},
        },
    }


# What geoservice.catalogue.validation.parse_geometry reads: positions of 2 or 3 numbers (longitude,
# latitude[, height], WGS-84 degrees), nested as the type says; lines of 2+ positions, rings
# of 4+. What OpenAPI 3.0 cannot say (latitude within ±90, closed and valid rings, a place
# inside the service area) is refused with 422 on `geometry…`.
_POSITION = {
    "type": "array",
    "minItems": 2,
    "maxItems": 3,
    "items": {"type": "number", "minimum": -180, "maximum": 180},
}


def _nest(schema: dict[str, Any], min_items: int = 1) -> dict[str, Any]:
    return {"type": "array", "minItems": min_items, "items": schema}


_LINE = _nest(_POSITION, 2)
_RINGS = _nest(_nest(_POSITION, 4))
GEOMETRY_COORDINATES: dict[str, dict[str, Any]] = {
    "Point": _POSITION,
    "MultiPoint": _nest(_POSITION),
    "LineString": _LINE,
    "MultiLineString": _nest(_LINE),
    "Polygon": _RINGS,
    "MultiPolygon": _nest(_RINGS),
}


def _geometry_input(types: tuple[str, ...]) -> dict[str, Any]:
    """The geometry a write of the collection accepts (its own geometry types)."""
    return {
        "oneOf": [
            {
                "type": "object",
                "required": ["type", "coordinates"],
                "properties": {
                    "type": {"type": "string", "enum": [t]},
                    "coordinates": GEOMETRY_COORDINATES[t],
                },
            }
            for t in types
            if t in GEOMETRY_COORDINATES
        ]
    }


def _code_input(spec: Any) -> dict[str, Any]:
    """A feature's code as catalogue.validation.check_properties reads it (a number is read as
    its digits; spaces around are trimmed)."""
    if spec.code_pattern is not None:
        text = {"type": "string", "pattern": rf"^\s*(?:{spec.code_pattern})\s*(?![\s\S])"}
    else:
        text = {"type": "string", "minLength": 1, "maxLength": CODE_MAX, "pattern": r"\S"}
    digits = re.fullmatch(r"\\d\{(\d+)\}", spec.code_pattern or "")
    if spec.code_pattern is None:
        number = {"type": "integer", "minimum": -(10**62), "maximum": 10**63}
    elif digits:  # a fixed number of digits, without leading zeros when sent as a number
        n = int(digits.group(1))
        number = {"type": "integer", "minimum": 10 ** (n - 1), "maximum": 10**n - 1}
    else:
        return {**text, "description": spec.code_hint or "编码"}
    return {"oneOf": [text, number], "description": spec.code_hint or "编码"}


def _feature_input_schema(coll: Collection) -> dict[str, Any]:
    schema = _feature_schema(coll)
    spec = coll.spec
    props = dict(coll.property_schema)
    required = ["code", "name"]
    props["code"] = _code_input(spec)
    props["name"] = {
        "type": "string",
        "title": "名称",
        "minLength": 1,
        "maxLength": NAME_MAX,
        "pattern": r"\S",
    }
    for attr in spec.attributes:
        if attr.required:
            required.append(attr.name)
            if attr.type is str and not attr.choices:
                props[attr.name] = {**props.get(attr.name, {}), "minLength": 1, "pattern": r"\S"}
    # Names the code reads, and those of its own answers it ignores; any other is a 422.
    names = [*writable_properties(spec), *READ_ONLY]
    names += [f"{link.prefix}_name" for link in spec.area_links()]
    props = {name: props.get(name, {}) for name in names}
    properties = {
        **schema["properties"],
        "geometry": _geometry_input(coll.geometry_types),
        "properties": {
            "type": "object",
            "required": required,
            "properties": props,
            "additionalProperties": False,
        },
    }
    return {**schema, "properties": properties}


def _collection_paths(coll: Collection) -> dict[str, Any]:
    cid = coll.id
    tag = cid
    feature_ref = {"$ref": f"#/components/schemas/{cid}Feature"}
    params = [
        {"$ref": "#/components/parameters/f"},
        {"$ref": "#/components/parameters/limit"},
        {"$ref": "#/components/parameters/offset"},
        {"$ref": "#/components/parameters/bbox"},
        {"$ref": "#/components/parameters/bbox-crs"},
    ]
    if coll.temporal_column:
        params.append({"$ref": "#/components/parameters/datetime"})
    filters = [_param(f.name, f.description, dict(f.schema)) for f in coll.filters.values()]
    fid = _param("featureId", "要素编号", {"type": "integer"}, True, "path")
    fid["style"] = "simple"
    items_get = {
        "tags": [tag],
        "summary": f"{coll.title}要素（分页）",
        "operationId": f"get_{cid}_items",
        "parameters": params + filters,
        "responses": {
            "200": {
                "description": "GeoJSON FeatureCollection",
                "content": {
                    GEOJSON: {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "type": {"type": "string", "enum": ["FeatureCollection"]},
                                "features": {"type": "array", "items": feature_ref},
                                "numberMatched": {"type": "integer"},
                                "numberReturned": {"type": "integer"},
                                "links": {"$ref": "#/components/schemas/links"},
                            },
                        }
                    },
                    HTML: {"schema": {"type": "string"}},
                },
            },
            "400": ERROR,
            "401": ERROR,
        },
    }
    item_get = {
        "tags": [tag],
        "summary": f"一个{coll.title}要素",
        "operationId": f"get_{cid}_item",
        "parameters": [fid, {"$ref": "#/components/parameters/f"}],
        "responses": {
            "200": {
                "description": "GeoJSON Feature（带 ETag）",
                "headers": {"ETag": {"schema": {"type": "string"}}},
                "content": {GEOJSON: {"schema": feature_ref}, HTML: {"schema": {"type": "string"}}},
            },
            "404": ERROR,
        },
    }
    paths: dict[str, Any] = {
        f"/collections/{cid}": {
            "get": {
                "tags": [tag],
                "summary": f"集合 {coll.title} 的说明",
                "operationId": f"describe_{cid}",
                "parameters": [{"$ref": "#/components/parameters/f"}],
                "responses": {"200": {"description": "集合说明"}, "404": ERROR},
            }
        },
        f"/collections/{cid}/items": {"get": items_get},
        f"/collections/{cid}/items/{{featureId}}": {"get": item_get},
        f"/collections/{cid}/tiles/{{z}}/{{x}}/{{y}}.pbf": {
            "get": {
                "tags": [tag],
                "summary": f"{coll.title}矢量切片（Mapbox Vector Tile，XYZ）",
                "operationId": f"get_{cid}_tile",
                "parameters": [
                    {
                        **_param(
                            n, text, {"type": "integer", "minimum": 0, "maximum": top}, True, "path"
                        ),
                        "style": "simple",
                    }
                    for n, text, top in TILE_XYZ
                ]
                + filters
                + ([{"$ref": "#/components/parameters/datetime"}] if coll.temporal_column else [])
                + [
                    _param(
                        "shift",
                        "gcj02：GCJ-02 平面的切片（高德底图），数据按切片中心的偏移量整体平移",
                        {"type": "string", "enum": ["gcj02"]},
                    )
                ],
                "responses": {
                    "200": {
                        "description": "MVT",
                        "content": {MVT: {"schema": {"type": "string", "format": "binary"}}},
                    },
                    "404": ERROR,
                },
            }
        },
        f"/collections/{cid}/tiles": {
            "get": {
                "tags": [tag],
                "summary": f"{coll.title}矢量切片说明（TileJSON 3.0）",
                "operationId": f"get_{cid}_tilejson",
                "parameters": [_param("f", "输出格式", {"type": "string", "enum": ["json"]})],
                "responses": {"200": {"description": "TileJSON"}},
            }
        },
        f"/collections/{cid}/export": {
            "get": {
                "tags": [tag],
                "summary": f"导出{coll.title}（全部符合条件的要素，不分页）",
                "operationId": f"export_{cid}",
                "parameters": [
                    _param("f", "格式", {"type": "string", "enum": ["geojson", "gpkg", "csv"]}),
                    {"$ref": "#/components/parameters/bbox"},
                    {"$ref": "#/components/parameters/bbox-crs"},
                    *(
                        [{"$ref": "#/components/parameters/datetime"}]
                        if coll.temporal_column
                        else []
                    ),
                    *filters,
                ],
                "responses": {
                    "200": {
                        "description": "文件",
                        "content": {
                            GEOJSON: {
                                "schema": {
                                    "type": "object",
                                    "required": ["type", "features"],
                                    "properties": {
                                        "type": {"type": "string", "enum": ["FeatureCollection"]},
                                        "features": {"type": "array", "items": feature_ref},
                                    },
                                }
                            },
                            "application/geopackage+sqlite3": {
                                "schema": {"type": "string", "format": "binary"}
                            },
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "400": ERROR,
                },
            }
        },
    }
    if getattr(coll, "accepts_sites", False):  # geoservice.api.assessment.create_site_features
        site_errors = {k: ERROR for k in ("400", "401", "403", "404", "413", "422")}
        site_feature = {
            "type": "object",
            "required": ["type", "properties"],
            "properties": {
                "type": {"type": "string", "enum": ["Feature"]},
                "geometry": {"type": "object", "nullable": True},
                "properties": {
                    "type": "object",
                    "description": "点位：kind（sites 集合必填，类别代码或名称）、code、name、"
                    "address、community_code、attributes（或类别属性作为同级字段）",
                    "required": ["code", "name"]
                    + (["kind"] if getattr(coll, "kind_code", None) is None else []),
                    "properties": {
                        "kind": {"type": "string", "minLength": 1, "pattern": r"\S"},
                        "code": {
                            "type": "string",
                            "description": "1–64 位字母、数字、下划线或连字符",
                            "pattern": r"^\s*[A-Za-z0-9_-]{1,64}\s*$",
                        },
                        "name": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 200,
                            "pattern": r"\S",
                        },
                        "address": {"type": "string", "nullable": True, "maxLength": 200},
                        "community_code": {"type": "string", "nullable": True},
                        "attributes": {"type": "object", "nullable": True},
                    },
                },
            },
        }
        paths[f"/collections/{cid}/items"]["post"] = {
            "tags": [tag],
            "summary": f"新增{coll.title}（Feature）或批量新增（FeatureCollection，"
            "全部成功或全部不写）；点位的修改与删除见 /assessment/sites/{site_id}",
            "operationId": f"create_{cid}",
            "requestBody": {
                "required": True,
                "content": {
                    m: {
                        "schema": {
                            "oneOf": [
                                site_feature,
                                {
                                    "type": "object",
                                    "required": ["type", "features"],
                                    "properties": {
                                        "type": {
                                            "type": "string",
                                            "enum": ["FeatureCollection"],
                                        },
                                        "features": {
                                            "type": "array",
                                            "items": site_feature,
                                            "minItems": 1,
                                        },
                                    },
                                },
                            ]
                        }
                    }
                    for m in (GEOJSON, JSON)
                },
            },
            "responses": {
                "201": {
                    "description": "已创建（Feature，或 {inserted, ids}）",
                    "content": {GEOJSON: {"schema": feature_ref}, JSON: {"schema": {}}},
                },
                **site_errors,
            },
        }
    if coll.writable:
        write_ok = {
            "description": "已保存",
            "headers": {"ETag": {"schema": {"type": "string"}}},
            "content": {GEOJSON: {"schema": feature_ref}},
        }
        feature_input = {"$ref": f"#/components/schemas/{cid}FeatureInput"}
        body = {
            "required": True,
            "content": {GEOJSON: {"schema": feature_input}, JSON: {"schema": feature_input}},
        }
        if_match = _param(
            "If-Match", "上次读取时的 ETag（乐观并发控制）", {"type": "string"}, where="header"
        )
        if_match["style"] = "simple"
        repair = _param("repair", "true：用 ST_MakeValid 自动修复无效几何", {"type": "boolean"})
        errors = {k: ERROR for k in ("400", "401", "403", "409", "413", "422")}
        paths[f"/collections/{cid}/items"]["post"] = {
            "tags": [tag],
            "summary": f"新增{coll.title}（Feature）或批量新增（FeatureCollection，"
            "全部成功或全部不写）",
            "operationId": f"create_{cid}",
            "parameters": [repair],
            "requestBody": body,
            "responses": {
                "201": {
                    "description": "已创建",
                    "headers": {"Location": {"schema": {"type": "string"}}},
                    "content": {GEOJSON: {"schema": feature_ref}, JSON: {"schema": {}}},
                },
                **errors,
            },
        }
        item_ops = paths[f"/collections/{cid}/items/{{featureId}}"]
        item_ops["put"] = {
            "tags": [tag],
            "summary": f"整体替换{coll.title}要素",
            "operationId": f"replace_{cid}",
            "parameters": [fid, if_match, repair],
            "requestBody": body,
            "responses": {"200": write_ok, "404": ERROR, "412": ERROR, **errors},
        }
        item_ops["patch"] = {
            "tags": [tag],
            "summary": f"修改{coll.title}要素的部分属性或几何（合并）",
            "operationId": f"update_{cid}",
            "parameters": [fid, if_match, repair],
            "requestBody": {
                "required": True,
                "content": {
                    "application/merge-patch+json": {"schema": {}},
                    GEOJSON: {"schema": {}},
                    JSON: {"schema": {}},
                },
            },
            "responses": {"200": write_ok, "404": ERROR, "412": ERROR, **errors},
        }
        item_ops["delete"] = {
            "tags": [tag],
            "summary": f"删除{coll.title}要素（仍有问题或包保记录时拒绝，409）",
            "operationId": f"delete_{cid}",
            "parameters": [fid, if_match],
            "responses": {
                "204": {"description": "已删除"},
                "404": ERROR,
                "409": ERROR,
                "412": ERROR,
            },
        }
        paths[f"/collections/{cid}/import"] = {
            "post": {
                "tags": [tag],
                "summary": f"上传文件批量导入{coll.title}"
                "（GeoJSON、Shapefile zip、GeoPackage、KML、CSV）",
                "operationId": f"import_{cid}",
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "map": {
                                        "type": "string",
                                        "description": "源字段=目标字段，逗号分隔",
                                        "pattern": MAP_PATTERN,
                                    },
                                    "crs": {"type": "string", "example": "EPSG:4490"},
                                    "encoding": {"type": "string", "example": "GBK"},
                                },
                                "additionalProperties": False,  # other form fields: 400
                            }
                        }
                    },
                },
                "responses": {
                    "201": {"description": "导入报告"},
                    **errors,
                    "415": ERROR,  # a file kind (extension or content) not accepted
                },
            }
        }
    return paths


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
                "responses": {"200": {"description": "集合"}},
            }
        },
        "/openapi": {
            "get": {
                "tags": ["服务"],
                "summary": "本接口说明（OpenAPI 3.0；f=html 为网页）",
                "operationId": "getOpenAPI",
                "parameters": [
                    _param("f", "输出格式", {"type": "string", "enum": ["json", "html"]})
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
        paths.update(_collection_paths(coll))
        schemas[f"{coll.id}Feature"] = _feature_schema(coll)
        if coll.writable:
            schemas[f"{coll.id}FeatureInput"] = _feature_input_schema(coll)
    config = current_app.config
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
            "415/400/422。",
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
                "f": _param(
                    "f", "输出格式", {"type": "string", "enum": ["json", "geojson", "html"]}
                ),
                "limit": _param(
                    "limit",
                    "每页条数（默认 100，最多 10000，更大的值按 10000 处理）",
                    {"type": "integer", "minimum": 1, "default": 100},
                ),
                "offset": _param("offset", "跳过的条数", {"type": "integer", "minimum": 0}),
                "bbox": _param(
                    "bbox",
                    "范围：最小经度,最小纬度,最大经度,最大纬度（CRS84）",
                    {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}},
                ),
                "bbox-crs": _param(
                    "bbox-crs",
                    "bbox 的坐标系（只支持 CRS84）",
                    {"type": "string", "enum": [CRS84, "CRS84", "EPSG:4326"]},
                ),
                "datetime": _param(
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
