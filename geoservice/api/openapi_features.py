"""The OpenAPI paths and schemas of each catalogue collection (OGC API – Features: items,
one feature, writes, import), and the shared `param` builder; openapi.document assembles them."""

from __future__ import annotations

import re
from typing import Any

from geoservice.api.openapi_kit import MAP_PATTERN, NOT_BLANK, TILE_XYZ, nullable
from geoservice.catalogue.catalogue import BOOL_VALUES, Collection
from geoservice.catalogue.validation import CODE_MAX, NAME_MAX, READ_ONLY, writable_properties
from geoservice.edge.params import GEOJSON, HTML, JSON, MVT

ERROR = {"$ref": "#/components/responses/Error"}
# Answers with an ETag (geoservice/edge/caching.py): If-None-Match naming it → 304.
NOT_MODIFIED = {"description": "未变化（If-None-Match 与当前 ETag 相同，无正文）"}


# The import form's switches (geoservice.api.imports.FORM_FIELDS; their values: BOOL_VALUES).
IMPORT_FLAGS = {
    "repair": "自动修复可修复的几何（自相交等），修复过的要素在报告中注明",
    "skip_invalid": "跳过有错误的要素，导入其余的（缺省：有一个错误则全部不导入）",
    "generate_codes": "为没有编码的要素生成编码",
    "local_codes": "接受本地编码方案（不按图层的标准编码格式校验）",
}


def param(name: str, description: str, schema: dict, required: bool = False, where="query"):
    return {
        "name": name,
        "in": where,
        "required": required,
        "description": description,
        "schema": schema,
        "style": "form",
        "explode": False,
    }


def feature_schema(coll: Collection) -> dict[str, Any]:
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
        text = {"type": "string", "minLength": 1, "maxLength": CODE_MAX, "pattern": NOT_BLANK}
    digits = re.fullmatch(r"\\d\{(\d+)\}", spec.code_pattern or "")
    if spec.code_pattern is None:
        number = {"type": "integer", "minimum": -(10**62), "maximum": 10**63}
    elif digits:  # a fixed number of digits, without leading zeros when sent as a number
        n = int(digits.group(1))
        number = {"type": "integer", "minimum": 10 ** (n - 1), "maximum": 10**n - 1}
    else:
        return {**text, "description": spec.code_hint or "编码"}
    return {"oneOf": [text, number], "description": spec.code_hint or "编码"}


def feature_input_schema(coll: Collection) -> dict[str, Any]:
    schema = feature_schema(coll)
    spec = coll.spec
    props = dict(coll.property_schema)
    required = ["code", "name"]
    props["code"] = _code_input(spec)
    props["name"] = {
        "type": "string",
        "title": "名称",
        "minLength": 1,
        "maxLength": NAME_MAX,
        "pattern": NOT_BLANK,
    }
    for attr in spec.attributes:
        if attr.required:
            required.append(attr.name)
            if attr.type is str and not attr.choices:
                props[attr.name] = {
                    **props.get(attr.name, {}),
                    "minLength": 1,
                    "pattern": NOT_BLANK,
                }
    # An optional attribute or area code given as null has no value (a PATCH clears it).
    for name in writable_properties(spec):
        if name not in required and name in props:
            props[name] = nullable(props[name])
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


def feature_patch_schema(coll: Collection) -> dict[str, Any]:
    """A PATCH body as writes.update_item reads it: a partial Feature (`type` absent or
    "Feature"), its properties merged into the stored ones (each as a write accepts it, none
    required) and its geometry, when given and not null, replacing the stored one; no `crs`."""
    full = feature_input_schema(coll)
    properties = dict(full["properties"])
    properties["properties"] = nullable(
        {k: v for k, v in properties["properties"].items() if k != "required"}
    )
    properties["geometry"] = nullable(properties["geometry"])
    return {
        "type": "object",
        "properties": properties,
        "not": {"required": ["crs"]},
    }


def collection_paths(coll: Collection) -> dict[str, Any]:
    cid = coll.id
    tag = cid
    feature_ref = {"$ref": f"#/components/schemas/{cid}Feature"}
    params = [
        {"$ref": "#/components/parameters/f"},
        {"$ref": "#/components/parameters/limit"},
        {"$ref": "#/components/parameters/offset"},
        {"$ref": "#/components/parameters/bbox"},
        {"$ref": "#/components/parameters/bbox-crs"},
        {"$ref": "#/components/parameters/crs"},
        # Every collection (without a time of its own every feature matches).
        {"$ref": "#/components/parameters/datetime"},
    ]
    filters = [param(f.name, f.description, dict(f.schema)) for f in coll.filters.values()]
    fid = param("featureId", "要素编号", {"type": "integer"}, True, "path")
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
                                "numberMatched": {
                                    "type": "integer",
                                    "description": "符合条件的要素总数；需逐行计数超过"
                                    " 1,000 个时省略，是否还有下一页以 next 链接为准",
                                },
                                "numberReturned": {"type": "integer"},
                                "links": {"$ref": "#/components/schemas/links"},
                            },
                        }
                    },
                    HTML: {"schema": {"type": "string"}},
                },
            },
            "304": NOT_MODIFIED,
            "400": ERROR,
            "401": ERROR,
        },
    }
    item_get = {
        "tags": [tag],
        "summary": f"一个{coll.title}要素",
        "operationId": f"get_{cid}_item",
        "parameters": [
            fid,
            {"$ref": "#/components/parameters/f"},
            {"$ref": "#/components/parameters/crs"},
        ],
        "responses": {
            "200": {
                "description": "GeoJSON Feature（带 ETag）",
                "headers": {"ETag": {"schema": {"type": "string"}}},
                "content": {GEOJSON: {"schema": feature_ref}, HTML: {"schema": {"type": "string"}}},
            },
            "304": NOT_MODIFIED,
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
                        **param(
                            n, text, {"type": "integer", "minimum": 0, "maximum": top}, True, "path"
                        ),
                        "style": "simple",
                    }
                    for n, text, top in TILE_XYZ
                ]
                + filters
                + ([{"$ref": "#/components/parameters/datetime"}] if coll.temporal_column else [])
                + [
                    param(
                        "shift",
                        "gcj02：GCJ-02 平面的切片（高德底图），数据按切片中心的偏移量整体平移",
                        {"type": "string", "enum": ["gcj02"]},
                    )
                ],
                "responses": {
                    "200": {
                        "description": "MVT（带 ETag；Cache-Control: private, no-cache）",
                        "content": {MVT: {"schema": {"type": "string", "format": "binary"}}},
                    },
                    "304": NOT_MODIFIED,
                    "404": ERROR,
                },
            }
        },
        f"/collections/{cid}/tiles": {
            "get": {
                "tags": [tag],
                "summary": f"{coll.title}矢量切片说明（TileJSON 3.0）",
                "operationId": f"get_{cid}_tilejson",
                "parameters": [param("f", "输出格式", {"type": "string", "enum": ["json"]})],
                "responses": {"200": {"description": "TileJSON"}},
            }
        },
        f"/collections/{cid}/export": {
            "get": {
                "tags": [tag],
                "summary": f"导出{coll.title}（全部符合条件的要素，不分页）",
                "operationId": f"export_{cid}",
                "parameters": [
                    param("f", "格式", {"type": "string", "enum": ["geojson", "gpkg", "csv"]}),
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
                        "kind": {"type": "string", "minLength": 1, "pattern": NOT_BLANK},
                        "code": {
                            "type": "string",
                            "description": "1–64 位字母、数字、下划线或连字符",
                            "pattern": r"^\s*[A-Za-z0-9_-]{1,64}\s*$",
                        },
                        "name": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 200,
                            "pattern": NOT_BLANK,
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
        if_match = param(
            "If-Match", "上次读取时的 ETag（乐观并发控制）", {"type": "string"}, where="header"
        )
        if_match["style"] = "simple"
        repair = param("repair", "true：用 ST_MakeValid 自动修复无效几何", {"type": "boolean"})
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
                    m: {"schema": {"$ref": f"#/components/schemas/{cid}FeaturePatch"}}
                    for m in ("application/merge-patch+json", GEOJSON, JSON)
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
                                    "default": {
                                        "type": "string",
                                        "description": "属性=缺省值，逗号分隔（文件中为空时使用）",
                                        "pattern": MAP_PATTERN,
                                    },
                                    "crs": {"type": "string", "example": "EPSG:4490"},
                                    "encoding": {"type": "string", "example": "GBK"},
                                    "layer": {
                                        "type": "string",
                                        "description": "文件含多个图层时要导入的图层名",
                                    },
                                    **{
                                        name: {
                                            "type": "string",
                                            "enum": list(BOOL_VALUES),
                                            "description": text,
                                        }
                                        for name, text in IMPORT_FLAGS.items()
                                    },
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
