"""OpenAPI of the rules endpoints (issue 17): 延期, published 通报, corrections, 退回, routing."""

from __future__ import annotations

from typing import Any

from geoservice.api.openapi_issues import ISSUE_ID, TAG
from geoservice.api.openapi_kit import (
    answer,
    array,
    boolean,
    free,
    instant,
    integer,
    json_body,
    nullable,
    obj,
    op,
    ref,
    string,
)


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
    return {
        "extensionEvent": event,
        "extensionHistory": obj(
            {"items": array(ref("extensionEvent")), "pending": nullable(ref("extensionEvent"))}
        ),
    }


def paths() -> dict[str, Any]:
    issue = answer(free("问题（同 GET /issues/{issue_id}），另含 event_id"), "处理后的问题")
    return {
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
                            "reason": string("申请理由"),
                            "deadline": string("申请的新期限（ISO 8601，带时区）"),
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
                            "deadline": string("批准的期限（缺省为申请的期限）"),
                        },
                    )
                ),
                errors=(404, 409, 415, 422),
            )
        },
    }
