"""OpenAPI: admin areas and the service area, rankings (督查考核) and their 通报 workbook, and
the map data endpoints. Choices (ranking groupings, area levels, labelled layers) come from
the registry and the code that checks them."""

from __future__ import annotations

from typing import Any

from geoservice.api.openapi_kit import (
    MAP_PATTERN,
    MVT,
    TILE_XYZ,
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
    limit_param,
    mapping,
    multipart,
    nullable,
    number,
    obj,
    op,
    path,
    query,
    ref,
    string,
    text_or_null,
)
from geoservice.areas.levels import LEVEL_TITLES, LEVELS
from geoservice.catalogue.catalogue import Catalogue
from geoservice.catalogue.importers import SUFFIXES
from geoservice.maps import mapdata
from geoservice.ranking import ranking
from geoservice.ranking.periods import PERIOD_KINDS
from geoservice.registry import LayerRegistry

TAG_AREAS = "行政区划"
TAG_RANKINGS = "排名通报"
TAG_MAP = "地图数据"


def schemas(registry: LayerRegistry) -> dict[str, Any]:
    area = obj(
        {
            "code": string("区划代码"),
            "name": string(),
            "level": enum(LEVELS, _levels_text()),
            "parent": text_or_null("上级区划代码"),
        }
    )
    row = obj(
        {
            "key": free(
                "行标识：编号（领导、单位、网格、社区、街道）或名称（图层、类别、来源）；"
                "未落实的一行为 null"
            ),
            "name": string(),
            "detail": free("补充信息（职务、单位、编码…）"),
            **{name: integer(title) for name, title in ranking.COUNTS.items()},
            **{name: nullable(number(title)) for name, title in ranking.RATES.items()},
            **{name: nullable(number(title)) for name, title in ranking.HOURS.items()},
            "satisfaction_answers": integer("回访数（本期群众回访评价数）"),
            "satisfaction_rate": nullable(
                number("群众满意率（满意+基本满意）÷ 回访数；无回访为 null")
            ),
            "score": nullable(number("综合得分（无应结案问题时为 null，不参与排名）")),
            "ranked": boolean("参与排名"),
            "rank": nullable(integer("名次（并列同名次）")),
            "bottom": boolean("后 N 名"),
            "below_threshold": boolean("低于合格分"),
            "flagged": boolean("被点名（后 N 名或低于合格分）"),
        },
        {
            "patrol_due": nullable(
                integer("应巡：本期结束的巡查任务数（仅包保领导、责任单位、街道、全域）")
            ),
            "patrol_done": nullable(integer("已巡：其中本期结束时已上传巡查记录的")),
            "patrol_missed": nullable(integer("逾期未巡")),
            "patrol_rate": nullable(number("巡查到位率 = 已巡 ÷ 应巡；无巡查任务为 null")),
        },
    )
    period = obj(
        {
            "kind": enum(PERIOD_KINDS),
            "from": instant(),
            "to": instant("结束（不含）"),
            "label": string(),
            "title": string(),
        },
        description="统计周期 [from, to)",
    )
    return {
        "area": area,
        "areaFeature": obj(
            {
                "type": enum(["Feature"]),
                "id": string("区划代码"),
                "geometry": ref("geometryGeoJSON"),
                "properties": area,
            }
        ),
        "period": period,
        "rankingRow": row,
        "ranking": obj(
            {
                "of": enum(ranking.groupings(registry)),
                "title": string(),
                "ranked": boolean("是否排名（类别、来源、全域只统计不排名）"),
                "period": ref("period"),
                "settings": obj(
                    {
                        "weights": mapping(number()),
                        "threshold": number("合格分"),
                        "bottom_n": integer("点名后几名"),
                        "formula": string("得分公式"),
                    }
                ),
                "indicators": mapping(string(), "指标名 → 中文名"),
                "drillable": array(enum(ranking.DRILLABLE)),
                "rows": array(ref("rankingRow")),
            }
        ),
    }


def _levels_text() -> str:
    return "级别：" + "、".join(f"{k}={v}" for k, v in LEVEL_TITLES.items())


def _tile_xyz() -> list[dict]:
    return [path(n, text, integer(minimum=0, maximum=top)) for n, text, top in TILE_XYZ]


SHIFT = query(
    "shift",
    "gcj02：GCJ-02 平面的切片（高德底图），数据按切片中心的偏移量整体平移",
    enum(["gcj02"]),
)
MVT_OK = {
    "200": answer({"type": "string", "format": "binary"}, "MVT（带 ETag）", MVT),
    "304": {"description": "未修改：If-None-Match 与当前 ETag 相同"},
}


def _period_params() -> list[dict]:
    kinds = "、".join(f"{k}={v}" for k, v in PERIOD_KINDS.items())
    return [
        query("period", f"统计周期（默认 week）：{kinds}", enum(PERIOD_KINDS), empty=True),
        query(
            "from",
            "周期：周 2026-W47、月 2026-11、季度 2026-Q4 或其中任一天 YYYY-MM-DD；"
            "自定义周期为开始日期或时间；默认上一个完整周期",
            string(),
        ),
        query("week", "from 的旧名", string()),
        query("to", "自定义周期的结束（不含）", string()),
    ]


def _issue_filters(catalogue: Catalogue) -> list[dict]:
    """The issues collection's own filters, which every map data endpoint takes."""
    coll = catalogue.get("issues")
    if coll is None:
        return []
    out = [query(f.name, f.description, dict(f.schema)) for f in coll.filters.values()]
    if coll.temporal_column:
        out.append({"$ref": "#/components/parameters/datetime"})
    return out


def paths(registry: LayerRegistry, catalogue: Catalogue) -> dict[str, Any]:
    groupings = ranking.groupings(registry)
    of_text = "、".join(f"{k}={g.title}" for k, g in groupings.items())
    of = query("of", f"排名对象：{of_text}", enum(groupings), True)
    layers_read = "layers.read"
    rankings_read = "rankings.read"
    filters = _issue_filters(catalogue)
    choropleth = mapdata.choropleth_groupings(registry)
    out: dict[str, Any] = {
        "/areas": {
            "get": op(
                TAG_AREAS,
                "list_areas",
                "行政区划列表（账号范围内）；geometry=true 时为带边界的 GeoJSON",
                layers_read,
                {
                    "200": answer(
                        {
                            "oneOf": [
                                obj({"areas": array(ref("area"))}),
                                obj(
                                    {
                                        "type": enum(["FeatureCollection"]),
                                        "features": array(ref("areaFeature")),
                                    }
                                ),
                            ]
                        },
                        "geometry=false：{areas}；"
                        "geometry=true：FeatureCollection（边界简化到约 1 米）",
                    )
                },
                parameters=[
                    query("level", _levels_text(), enum(LEVELS)),
                    query("parent", "上级区划代码", string()),
                    query("geometry", "true：带边界", boolean()),
                ],
                errors=(400,),
            )
        },
        "/areas/{code}": {
            "get": op(
                TAG_AREAS,
                "get_area",
                "一个行政区划（GeoJSON Feature）",
                layers_read,
                {"200": answer(ref("areaFeature"))},
                parameters=[path("code", "区划代码", string())],
                errors=(404,),
                description="账号范围外的区划与不存在的一样回答 404。",
            )
        },
        "/areas/import": {
            "post": op(
                TAG_AREAS,
                "import_areas",
                "上传行政区划文件（全部成功或全部不写），之后重新链接上下级",
                "areas.write",
                {"201": answer(free("导入报告与链接报告（links）"), "已导入")},
                body=multipart(
                    obj(
                        {
                            "file": file_field(f"文件（{'、'.join(SUFFIXES)}）"),
                            "level": enum(LEVELS, _levels_text()),
                        },
                        {
                            "map": string("源字段=目标字段，逗号分隔", pattern=MAP_PATTERN),
                            "crs": string(example="EPSG:4490"),
                            "encoding": string(example="GBK"),
                            "layer": string("GeoPackage 的图层"),
                            "local_codes": boolean("使用本地代码（非 12 位统计代码）"),
                            "repair": boolean("修复无效几何"),
                            "skip_invalid": boolean("跳过无效的区划"),
                            "replace": boolean("替换同级已有区划"),
                        },
                    )
                    | {"additionalProperties": False}  # other form fields: 400
                ),
                errors=(415, 422),
                description="仅限不限定区域的账号（否则 403）。未知表单字段 400；"
                "任何区划有错误时 422，detail 为导入报告，全部不写入。",
            )
        },
        "/service-area": {
            "get": op(
                TAG_AREAS,
                "get_service_area",
                "服务范围：来源、组成区划、面积、范围框与简化轮廓",
                layers_read,
                {
                    "200": answer(
                        obj(
                            {
                                "type": enum(["Feature"]),
                                "geometry": nullable(ref("geometryGeoJSON")),
                                "properties": obj(
                                    {
                                        "source": text_or_null("服务范围的来源"),
                                        "title": text_or_null(),
                                        "areas": array(free()),
                                        "extent": nullable(array(number(), minItems=4, maxItems=4)),
                                    },
                                    {"area_m2": number()},
                                ),
                            }
                        )
                    )
                },
            )
        },
        "/rankings": {
            "get": op(
                TAG_RANKINGS,
                "get_rankings",
                "排名：领导、单位、网格、社区、街道…按综合得分；类别、来源、全域只统计",
                rankings_read,
                {
                    "200": answer(ref("ranking")),
                    "304": {"description": "未变化（If-None-Match 与当前 ETag 相同，无正文）"},
                },
                parameters=[of, *_period_params()],
                errors=(400,),
            )
        },
        "/rankings/issues": {
            "get": op(
                TAG_RANKINGS,
                "get_ranking_issues",
                "一个数字背后的问题（钻取；只列账号范围内的问题）",
                rankings_read,
                {
                    "200": answer(
                        obj(
                            {
                                "of": string(),
                                "key": free(),
                                "indicator": enum(ranking.DRILLABLE),
                                "indicator_title": string(),
                                "period": ref("period"),
                                "total": integer("同 numberMatched（旧名）"),
                                "issues": array(free()),
                                "numberMatched": integer("符合条件的总条数"),
                                "numberReturned": integer("本次列出的条数（不超过 limit）"),
                            }
                        )
                    )
                },
                parameters=[
                    of,
                    query("key", "行标识（空或 none：未落实的一行）", string()),
                    query("indicator", "指标", enum(ranking.DRILLABLE), True),
                    limit_param(1000, 5000, "最多条数"),
                    *_period_params(),
                ],
                errors=(400,),
            )
        },
        "/rankings/trend": {
            "get": op(
                TAG_RANKINGS,
                "get_ranking_trend",
                "连续若干周期的得分与数量（趋势）",
                rankings_read,
                {
                    "200": answer(
                        obj({"of": string(), "periods": array(string()), "rows": array(free())})
                    )
                },
                parameters=[
                    of,
                    query(
                        "periods",
                        "周期数（2–26，默认 8）",
                        integer(minimum=2, maximum=26),
                        empty=True,
                    ),
                    *_period_params(),
                ],
                errors=(400,),
            )
        },
        "/rankings/charts": {
            "get": op(
                TAG_RANKINGS,
                "get_ranking_charts",
                "通报图表的数据：每周趋势、超期按类别/来源、受理按来源",
                rankings_read,
                {
                    "200": answer(
                        obj(
                            {
                                "period": ref("period"),
                                "weekly": free(),
                                "overdue_by_category": array(free()),
                                "overdue_by_source": array(free()),
                                "received_by_source": array(free()),
                            }
                        )
                    )
                },
                parameters=[
                    query(
                        "weeks", "周数（2–26，默认 8）", integer(minimum=2, maximum=26), empty=True
                    ),
                    *_period_params(),
                ],
                errors=(400,),
            )
        },
        "/rankings/report.xlsx": {
            "get": op(
                TAG_RANKINGS,
                "get_ranking_report",
                "下载通报工作簿（Excel：各排名、后几名、图表）",
                rankings_read,
                {"200": download(XLSX, "Excel 工作簿")},
                parameters=_period_params(),
                errors=(400,),
            )
        },
        "/leaders/{leader_id}/scorecard": {
            "get": op(
                TAG_RANKINGS,
                "get_leader_scorecard",
                "一位包保领导的考核情况（本周期得分、名次、趋势、超期问题）",
                rankings_read,
                {
                    "200": answer(
                        obj(
                            {
                                "leader": free(),
                                "period": ref("period"),
                                "row": nullable(ref("rankingRow")),
                                "ranked_count": integer(),
                                "trend": free(),
                                "overdue": free(),
                                "settings": free(),
                            }
                        )
                    )
                },
                parameters=[path("leader_id", "领导编号"), *_period_params()],
                errors=(400, 404),
                description="admin、planner、viewer 可查看任何领导；"
                "leader 账号只能查看本人（否则 403）。",
            )
        },
        "/map/summary": {
            "get": op(
                TAG_MAP,
                "get_map_summary",
                "各显示类别的问题数（超期 / 办理中 / 待复核 / 已办结）",
                "issues.read",
                {"200": answer(obj({"classes": array(ref("mapClass")), "total": integer()}))},
                parameters=filters,
                errors=(400,),
            )
        },
        "/map/counts": {
            "get": op(
                TAG_MAP,
                "get_map_counts",
                "分区着色：每个网格 / 社区 / 街道的问题数与分级断点",
                "issues.read",
                {
                    "200": answer(
                        obj(
                            {
                                "of": enum(choropleth),
                                "of_title": string(),
                                "measure": enum(mapdata.MEASURES),
                                "measure_title": string(),
                                "counts": mapping(integer(), "地点或区划编号 → 数量"),
                                "breaks": array(number()),
                                "total": integer(),
                                "max": integer(),
                            }
                        )
                    )
                },
                parameters=[
                    query("of", "着色对象（默认 grid）", enum(choropleth)),
                    query(
                        "measure",
                        "open=未办结、overdue=超期（默认 open）",
                        enum(mapdata.MEASURES),
                    ),
                    *filters,
                ],
                errors=(400,),
            )
        },
        "/map/heat": {
            "get": op(
                TAG_MAP,
                "get_map_heat",
                "热力图：当前范围内按格汇总的未办结问题",
                "issues.read",
                {
                    "200": answer(
                        obj(
                            {
                                "points": array(
                                    array(number(), minItems=3, maxItems=3),
                                    "[纬度, 经度, 数量]（Leaflet.heat 的顺序）",
                                ),
                                "max": integer(),
                            }
                        )
                    )
                },
                parameters=[
                    {
                        **query(
                            "bbox",
                            "当前地图范围：最小经度,最小纬度,最大经度,最大纬度",
                            array(number(), minItems=4, maxItems=4),
                            True,
                        ),
                        "explode": False,
                    },
                    query("z", "当前缩放级别（0–22）", integer(minimum=0, maximum=22), True),
                    *filters,
                ],
                errors=(400,),
            )
        },
        "/map/areas/{level}/tiles/{z}/{x}/{y}.pbf": {
            "get": op(
                TAG_MAP,
                "get_area_tile",
                "行政区划边界矢量切片（分区着色的形状）",
                layers_read,
                MVT_OK,
                parameters=[path("level", _levels_text(), enum(LEVELS)), *_tile_xyz(), SHIFT],
                errors=(400, 404),
            )
        },
        "/map/screen": {
            "get": op(
                TAG_MAP,
                "get_map_screen",
                "大屏：全县口径的本周数字与最新问题",
                ["issues.read", "rankings.read"],
                {
                    "200": answer(
                        obj(
                            {
                                "at": instant(),
                                "week": ref("period"),
                                "open": integer(),
                                "overdue": integer(),
                                "fixed": integer(),
                                "closed_this_week": integer(),
                                "received_this_week": integer(),
                                "close_rate": nullable(number()),
                                "classes": array(ref("mapClass")),
                                "latest": array(free()),
                            }
                        )
                    )
                },
                description="两种权限都需要，且仅限不限定区域的账号（否则 403）。",
            )
        },
    }
    for coll in catalogue:
        if coll.spec is None or coll.spec.label is None:
            continue
        tile_filters = [query(f.name, f.description, dict(f.schema)) for f in coll.filters.values()]
        if coll.temporal_column:
            tile_filters.append({"$ref": "#/components/parameters/datetime"})
        out[f"/map/labels/{coll.id}/tiles/{{z}}/{{x}}/{{y}}.pbf"] = {
            "get": op(
                coll.id,
                f"get_{coll.id}_label_tile",
                f"{coll.title}标注点矢量切片（如网格编码）",
                layers_read,
                MVT_OK,
                parameters=[*_tile_xyz(), *tile_filters, SHIFT],
                errors=(400, 404),
            )
        }
    return out


def map_schemas() -> dict[str, Any]:
    return {
        "mapClass": obj(
            {
                "id": enum([c.id for c in mapdata.ISSUE_CLASSES]),
                "title": string(),
                "colour": string("颜色 #rrggbb"),
                "count": integer(),
            }
        )
    }
