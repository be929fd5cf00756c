"""OpenAPI of the rules endpoints (issue 17): 延期, published 通报, corrections, 退回, routing."""

from __future__ import annotations

from typing import Any

from geoservice.api.openapi_issues import ISSUE_ID, TAG
from geoservice.api.openapi_kit import (
    NOT_BLANK,
    answer,
    array,
    boolean,
    download,
    enum,
    free,
    instant,
    integer,
    json_body,
    nullable,
    number,
    obj,
    op,
    paging,
    path,
    query,
    ref,
    string,
)
from geoservice.api.openapi_people import TAG as TAG_RESPONSIBILITY
from geoservice.api.openapi_reports import TAG_RANKINGS
from geoservice.catalogue.catalogue import SPACE_CHARS
from geoservice.issues.extensions import REASON_MAX
from geoservice.ranking.vocabularies import RULES

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def schemas() -> dict[str, Any]:
    event = obj(
        {
            "event_id": integer(),
            "action": string("extension_request / extension_grant / extension_refuse"),
            "at": instant(),
        },
        {
            "actor_id": nullable(integer()),
            "note": string("理由或说明"),
            "requested_deadline": nullable(string("申请的期限")),
            "deadline": nullable(string("批准后的期限（申请时为当时的期限）")),
            "leader_id": nullable(integer("当时的责任领导")),
        },
    )
    rule = obj(
        {
            "id": integer(),
            "category": string(),
            "unit_id": integer(),
            "role": string("lead / assist"),
            "role_label": string("牵头 / 配合"),
            "co_responsible": boolean(),
            "valid_from": instant(),
        },
        {
            "area_id": nullable(integer()),
            "layer": nullable(string()),
            "note": string(),
            "valid_to": nullable(string()),
            "created_by_id": nullable(integer()),
        },
    )
    return {
        "vocabularyCategory": obj(
            {
                "name": string(),
                "deadline_hours": number("处置时限（小时）"),
                "min_photos": integer("上报至少照片数"),
                "negative_list": boolean("上报即列入负面清单"),
            }
        ),
        "routingRule": rule,
        "extensionEvent": event,
        "extensionHistory": obj(
            {"items": array(ref("extensionEvent")), "pending": nullable(ref("extensionEvent"))}
        ),
    }


def paths(config: Any = None) -> dict[str, Any]:
    categories = list(config["ISSUE_CATEGORIES"]) if config else []
    issue = answer(free("问题（同 GET /issues/{issue_id}），另含 event_id"), "处理后的问题")
    publication = free(
        "通报：id, period{kind,label,from,to,title}, version, title, published_at, "
        "published_by, note, filename, size_bytes, workbook_sha256, figures_sha256, "
        "inputs_sha256, settings"
    )
    pub_id = path("publication_id", "通报编号")
    return {
        "/rankings/publications": {
            "get": op(
                TAG_RANKINGS,
                "list_publications",
                "已发布的通报（谁、何时发布）",
                "rankings.read",
                {"200": answer(obj({"total": integer(), "items": array(publication)}))},
                parameters=paging(200, 1000),
            ),
            "post": op(
                TAG_RANKINGS,
                "publish_report",
                "发布通报：冻结存档（工作簿原件、数字、输入摘要）",
                "rankings.publish",
                {"201": answer(publication, "已发布")},
                description="只能发布已结束的周期。已发布过的周期须填写理由 note，"
                "作为新版本保存，原版本保留，不会被替换。",
                body=json_body(
                    obj(
                        {},
                        {
                            "period": enum(
                                ["week", "month", "quarter", "custom"], "统计期（默认 week）"
                            ),
                            "from": string("如 2026-W47、2026-11、2026-Q4 或日期"),
                            "to": string("custom 周期的终点（不含）"),
                            "note": string("重新发布的理由"),
                        },
                    )
                ),
                errors=(409, 415, 422),
            ),
        },
        "/rankings/publications/{publication_id}": {
            "get": op(
                TAG_RANKINGS,
                "get_publication",
                "一期通报：发布时的数字，以及按同样规则重算的核对（重算结果不同时列出差异和原因）",
                "rankings.read",
                {"200": answer(free("通报摘要 + figures + check{same, differences, corrections}"))},
                parameters=[pub_id, query("check", "0：不重算核对", string())],
                errors=(404,),
            )
        },
        "/rankings/publications/{publication_id}/report.xlsx": {
            "get": op(
                TAG_RANKINGS,
                "download_publication",
                "下载通报工作簿（与发布时逐字节相同）",
                "rankings.read",
                {
                    "200": download(XLSX, "发布时的工作簿；ETag 与 X-Content-SHA256 为其 SHA-256"),
                    "304": {"description": "If-None-Match 与 ETag 相同：未修改，不返回内容"},
                },
                parameters=[pub_id],
                errors=(404,),
            )
        },
        "/rule-settings": {
            "get": op(
                TAG_RANKINGS,
                "list_rule_settings",
                "考核规则与词表（权重、达标线、后N名、类别时限、类别、来源、层级、包保角色）："
                "当前值与历史",
                "rankings.read",
                {"200": answer(free("at, rules[{key, title, value, history[]}]"))},
                parameters=[
                    query(
                        "at",
                        "查看此时生效的值（日期或 ISO 8601 时间，不带时区按本地时区；默认现在）",
                        string(format="iso-instant"),
                    )
                ],
            ),
            "post": op(
                TAG_RANKINGS,
                "create_rule_setting",
                "调整一条规则：自 valid_from 起生效（不得早于现在），须填理由，记入操作日志",
                "rules.admin",
                {"201": answer(free("新值：id, key, title, value, valid_from, note"))},
                description="排名使用每个统计期开始时生效的值；已结束的周期保留当时的规则。"
                "词表（issue_categories、issue_sources、leader_levels、assignment_roles）"
                "整表给出；停用的值在已有记录上保留。删除仍有现行包保责任使用的角色、"
                "停用系统自动使用的问题来源（12345 热线接口、巡查、暗访督查、随手拍）"
                "被拒绝（409）。",
                body=json_body(
                    obj(
                        {
                            "key": enum(list(RULES), "规则名"),
                            "value": free("新值"),
                            "note": string("理由（必填）", minLength=1, pattern=NOT_BLANK),
                        },
                        {"valid_from": string("生效时间（默认现在）", format="iso-instant")},
                    )
                ),
                errors=(409, 415, 422),
            ),
        },
        "/rule-settings/categories": {
            "post": op(
                TAG_RANKINGS,
                "create_rule_setting_category",
                "新增或修改一个问题类别：时限、上报照片数、负面清单一次设定，自同一时间生效",
                "rules.admin",
                {
                    "201": answer(
                        obj({"items": array(free("新值：id, key, title, value, valid_from, note"))})
                    )
                },
                description="为每条受影响的规则（类别表、时限、照片数、负面清单）各写一条新值，"
                "生效时间相同，记入操作日志。某条规则在该时间之后已有计划调整时拒绝（409）。",
                body=json_body(
                    obj(
                        {
                            "name": string(
                                "类别名称（1–32 字，不含逗号、顿号）",
                                minLength=1,
                                maxLength=32,
                                pattern=rf"^[^,，、\r\n\t]*[^{SPACE_CHARS},，、][^,，、\r\n\t]*$",
                            ),
                            "deadline_hours": number(
                                "处置时限（小时）",
                                minimum=0,
                                exclusiveMinimum=True,
                                maximum=24 * 366,
                            ),
                            "note": string("理由（必填）", minLength=1, pattern=NOT_BLANK),
                        },
                        {
                            "min_photos": integer("上报至少照片数（0–9）", minimum=0, maximum=9),
                            "negative_list": boolean("上报即列入负面清单"),
                            "valid_from": string("生效时间（默认现在）", format="iso-instant"),
                        },
                    )
                ),
                errors=(409, 415, 422),
            ),
        },
        "/vocabularies": {
            "get": op(
                TAG_RANKINGS,
                "list_vocabularies",
                "词表：某一时刻生效的问题类别（时限、照片数、负面清单）、来源、领导层级、包保角色",
                None,
                {
                    "200": answer(
                        obj(
                            {
                                "at": instant(),
                                "categories": array(ref("vocabularyCategory")),
                                "retired_categories": array(ref("vocabularyCategory")),
                                "sources": array(string()),
                                "retired_sources": array(string()),
                                "leader_levels": array(string()),
                                "retired_leader_levels": array(string()),
                                "assignment_roles": array(string()),
                                "retired_assignment_roles": array(string()),
                            }
                        )
                    )
                },
                description="新上报、导入与分配只接受生效中的值；retired_* 为已停用、"
                "旧记录仍可能带有的值（筛选时可用）。",
                parameters=[
                    query(
                        "at",
                        "查看此时生效的词表（带时区的 ISO 8601 时间，或日期=当日零点；默认现在）",
                        string(format="iso-instant"),
                    )
                ],
                errors=(400,),
            ),
        },
        "/area-assignments": {
            "get": op(
                TAG_RESPONSIBILITY,
                "list_area_assignments",
                "社区、街道的包保领导（兜底归属的社区、街道两步）",
                "assignments.read",
                {
                    "200": answer(
                        obj(
                            {
                                "items": array(
                                    free("id, area_id, leader_id, role, valid_from, valid_to")
                                )
                            }
                        )
                    )
                },
            ),
            "post": op(
                TAG_RESPONSIBILITY,
                "create_area_assignment",
                "指定社区或街道的包保领导（自 valid_from 起；原有的同时结束，历史保留）",
                "assignments.write",
                {"201": answer(free("id, area_id, leader_id, role, valid_from, valid_to"))},
                body=json_body(
                    obj(
                        {
                            "area_id": integer("社区或街道", minimum=1, maximum=2**31 - 1),
                            "leader_id": integer("包保领导", minimum=1, maximum=2**31 - 1),
                        },
                        {
                            "role": string("角色，如 社区书记", minLength=1, maxLength=32),
                            "valid_from": string("生效时间", format="iso-instant"),
                        },
                    )
                ),
                errors=(415, 422),
            ),
        },
        "/routing-rules": {
            "get": op(
                TAG_RESPONSIBILITY,
                "list_routing_rules",
                "条块分工规则（类别 × 区域/图层 → 责任单位，牵头/配合）",
                "assignments.read",
                {"200": answer(obj({"items": array(ref("routingRule"))}))},
                parameters=[
                    query(
                        "at",
                        "只列此时生效的规则（日期或 ISO 8601 时间，不带时区按本地时区）",
                        string(format="iso-instant"),
                    )
                ],
            ),
            "post": op(
                TAG_RESPONSIBILITY,
                "create_routing_rule",
                "新增条块分工规则（自 valid_from 起对新上报的问题生效，记入操作日志）",
                "assignments.write",
                {"201": answer(ref("routingRule"))},
                body=json_body(
                    obj(
                        {
                            "category": enum(categories, "问题类别")
                            if categories
                            else string("问题类别", minLength=1),
                            "unit_id": integer("责任单位", minimum=1, maximum=2**31 - 1),
                        },
                        {
                            "role": enum(["lead", "assist"], "lead 牵头（默认）/ assist 配合"),
                            "area_id": integer("仅限该社区或街道", minimum=1, maximum=2**31 - 1),
                            "layer": string("仅限该图层的地点", minLength=1),
                            "co_responsible": boolean("地点包保领导共同负责（默认仅知悉）"),
                            "valid_from": string("生效时间（默认现在）", format="iso-instant"),
                            "valid_to": string("失效时间（不含）", format="iso-instant"),
                            "note": string("说明"),
                        },
                    )
                ),
                errors=(415, 422),
            ),
        },
        "/routing-rules/{rule_id}/end": {
            "post": op(
                TAG_RESPONSIBILITY,
                "end_routing_rule",
                "停止一条条块分工规则（此前上报的问题不受影响）",
                "assignments.write",
                {"200": answer(ref("routingRule"))},
                parameters=[path("rule_id", "规则编号")],
                body=json_body(
                    obj(
                        {},
                        {
                            "valid_to": string(
                                "停止时间（带时区的 ISO 8601 时间；默认现在）", format="date-time"
                            )
                        },
                    ),
                    required=False,
                ),
                errors=(404, 415, 422),
            )
        },
        "/issues/{issue_id}/return": {
            "post": op(
                TAG,
                "request_issue_return",
                "申请退回（不属于本单位，须填理由）",
                ["issues.read", "issues.fix"],
                {"201": issue},
                description="只有该问题的责任领导或其单位；已交办、整改中的问题；一次一个待确权申请。",
                parameters=[ISSUE_ID],
                body=json_body(
                    obj({"reason": string("理由（必填）", minLength=1, pattern=NOT_BLANK)})
                ),
                errors=(404, 409, 415, 422),
            )
        },
        "/issues/{issue_id}/return/decision": {
            "post": op(
                TAG,
                "decide_issue_return",
                "确权：同意退回（改由指定领导负责，或回到待派遣队列）或驳回",
                ["issues.read", "issues.dispatch"],
                {"200": issue},
                description="同意：退回前的时间不计入申请退回的领导（追溯清除其记录，该段时间计入"
                "“未落实包保领导”行），指定的领导从确权时起按类别时限重新计期限。驳回须填理由。",
                parameters=[ISSUE_ID],
                body=json_body(
                    obj(
                        {"grant": boolean("true 同意退回，false 驳回")},
                        {
                            "note": string("说明；驳回时必填"),
                            "leader_id": integer("确权后的责任领导（缺省：回到待派遣队列）"),
                        },
                    )
                ),
                errors=(404, 409, 415, 422),
            )
        },
        "/issues/{issue_id}/attribution-correction": {
            "post": op(
                TAG,
                "correct_issue_attribution",
                "纠正责任归属（追溯生效，须填理由）",
                ["issues.read", "issues.dispatch"],
                {"200": issue},
                description="与改派不同：纠正表示原记录自始有误，历史上记录的该领导全部改为正确的"
                "领导，已发布通报重算可能不同，其页面列出这次纠正。",
                parameters=[ISSUE_ID],
                body=json_body(
                    obj(
                        {"leader_id": integer("正确的责任领导"), "reason": string("理由")},
                        {"wrong_leader_id": integer("原记录的领导（缺省为上报时归属的领导）")},
                    )
                ),
                errors=(404, 409, 415, 422),
            )
        },
        "/issues/{issue_id}/extensions": {
            "get": op(
                TAG,
                "list_issue_extensions",
                "问题的延期申请与审批记录",
                "issues.read",
                {"200": answer(ref("extensionHistory"))},
                parameters=[ISSUE_ID],
                errors=(404,),
            ),
            "post": op(
                TAG,
                "request_issue_extension",
                "申请延期（责任领导或其单位）",
                ["issues.read", "issues.fix"],
                {"201": issue},
                description="只有已交办、整改中的问题；同一时间只能有一个待审批的申请。"
                "改派不会重置期限，只有批准的延期会给出时间。",
                parameters=[ISSUE_ID],
                body=json_body(
                    obj(
                        {
                            "reason": string(
                                f"申请理由（不超过 {REASON_MAX} 字）",
                                minLength=1,
                                maxLength=REASON_MAX,
                                pattern=NOT_BLANK,
                            ),
                            "deadline": string(
                                "申请的新期限（ISO 8601，带时区）", format="date-time"
                            ),
                        }
                    )
                ),
                errors=(404, 409, 415, 422),
            ),
        },
        "/issues/{issue_id}/extensions/decision": {
            "post": op(
                TAG,
                "decide_issue_extension",
                "审批延期：批准（可改期限）或驳回（须填理由）",
                ["issues.read", "issues.dispatch"],
                {"200": issue},
                parameters=[ISSUE_ID],
                body=json_body(
                    obj(
                        {"grant": boolean("true 批准，false 驳回")},
                        {
                            "note": string("说明；驳回时必填"),
                            "deadline": string(
                                "批准的期限（ISO 8601，带时区；缺省为申请的期限）",
                                format="date-time",
                            ),
                        },
                    )
                ),
                errors=(404, 409, 415, 422),
            )
        },
    }
