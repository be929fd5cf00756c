"""OpenAPI: /api/notifications (channels, the queue and dead letters, preferences, unit
contacts, integration callbacks)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geoservice.api.openapi_kit import (
    NOT_BLANK,
    answer,
    array,
    boolean,
    enum,
    free,
    instant,
    integer,
    json_body,
    mapping,
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
from geoservice.notifications.models import CHANNEL_KINDS, DELIVERY_STATES

TAG = "消息通知"
DESCRIPTION = (
    "通知渠道（邮件、企业微信/钉钉群机器人、签名 Webhook、短信网关；密钥只写不读）、"
    "发送队列与死信（可重发）、个人接收偏好（渠道、免打扰、每日汇总）、单位联络人与联点领导、"
    "对接系统的回单地址。输入错误：请求体不是 JSON 415/400，字段取值错误 422，名称重复 409"
)
ADMIN = "notifications.admin"


def paths(config: Mapping[str, Any]) -> dict[str, Any]:
    channel_id = path("channel_id", "渠道编号")
    channel_fields = {
        "kind": enum(list(CHANNEL_KINDS), "渠道类型（新建时必填，不能修改）"),
        "name": string(
            "名称（唯一，不超过 100 字）", minLength=1, maxLength=100, pattern=NOT_BLANK
        ),
        "enabled": boolean(),
        "unit_id": nullable(
            integer("只发给该单位人员的消息（群机器人、Webhook）；须为已有单位", minimum=1)
        ),
        "config": nullable(
            mapping(free(), "可显示的设置（按类型）：email 的 host/port/security/username/sender")
        ),
        "secrets": nullable(
            mapping(free(), "只写的密钥（按类型）：password、webhook_url、sign_secret、secret")
        ),
    }
    channel_body = json_body(obj({}, channel_fields))
    new_channel_body = json_body(
        obj({k: channel_fields[k] for k in ("kind", "name")}, channel_fields)
    )
    quiet = r"^(([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?)?$"  # empty: none
    preference_body = json_body(
        {
            **obj(
                {},
                {
                    "email": nullable(
                        string("邮箱（空：不设）", pattern=r"^\s*([^@\s]+@[^@\s]+\.[^@\s]+)?\s*$")
                    ),
                    "mobile": nullable(
                        string("手机号（空：用领导的电话）", pattern=r"^\s*(\+?\d{5,20})?\s*$")
                    ),
                    "channels": nullable(array(enum(list(CHANNEL_KINDS)))),
                    "quiet_start": nullable(string("HH:MM，本地时间", pattern=quiet)),
                    "quiet_end": nullable(string("HH:MM", pattern=quiet)),
                    "digest": boolean("true：每日汇总一次，不逐条发送（超期提醒除外）"),
                },
            ),
            "additionalProperties": False,  # other fields: 422
        }
    )
    leader_id = path("leader_id", "领导编号")
    return {
        "/notifications/status": {
            "get": op(
                TAG,
                "notification_status",
                "发送队列：待发数、最早未送达的时长、死信数",
                ADMIN,
                {"200": answer(ref("notificationQueue"))},
            )
        },
        "/notifications/channels": {
            "get": op(
                TAG,
                "list_notification_channels",
                "通知渠道列表（密钥只列名称）",
                ADMIN,
                {"200": answer(obj({"channels": array(ref("notificationChannel"))}))},
            ),
            "post": op(
                TAG,
                "create_notification_channel",
                "新建通知渠道",
                ADMIN,
                {"201": answer(ref("notificationChannel"), "已创建")},
                body=new_channel_body,
                errors=(409, 415, 422),
            ),
        },
        "/notifications/channels/{channel_id}": {
            "patch": op(
                TAG,
                "update_notification_channel",
                "修改通知渠道（未给出的密钥保持不变）",
                ADMIN,
                {"200": answer(ref("notificationChannel"))},
                parameters=[channel_id],
                body=channel_body,
                errors=(404, 409, 415, 422),
            ),
            "delete": op(
                TAG,
                "delete_notification_channel",
                "删除通知渠道（连同其发送记录）",
                ADMIN,
                {"204": {"description": "已删除"}},
                parameters=[channel_id],
                errors=(404,),
            ),
        },
        "/notifications/deliveries": {
            "get": op(
                TAG,
                "list_notification_deliveries",
                "发送记录（status=dead 即死信）",
                ADMIN,
                {"200": answer(paged("deliveries", ref("notificationDelivery")))},
                parameters=[
                    query("status", "状态", enum(list(DELIVERY_STATES)), empty=True),
                    *paging(100, 1000),
                ],
                errors=(422,),
            )
        },
        "/notifications/deliveries/replay": {
            "post": op(
                TAG,
                "replay_notification_deliveries",
                "死信重新排队发送",
                ADMIN,
                {"200": answer(obj({"replayed": integer()}))},
                body=json_body(
                    {
                        "type": "object",
                        "description": "ids：死信编号（至少一个），或 all: true（全部死信）",
                        "properties": {"all": boolean()},
                        "anyOf": [
                            {"required": ["all"], "properties": {"all": {"enum": [True]}}},
                            {
                                "required": ["ids"],
                                "properties": {
                                    "ids": array(integer(minimum=1, maximum=2**63 - 1), minItems=1)
                                },
                            },
                        ],
                    }
                ),
                errors=(415, 422),
            )
        },
        "/notifications/preferences/{leader_id}": {
            "get": op(
                TAG,
                "get_notification_preferences",
                "个人接收偏好（管理员，或领导本人）",
                None,
                {"200": answer(ref("notificationPreference"))},
                parameters=[leader_id],
                errors=(404,),
            ),
            "put": op(
                TAG,
                "set_notification_preferences",
                "设置个人接收偏好（管理员，或领导本人）",
                None,
                {"200": answer(ref("notificationPreference"))},
                parameters=[leader_id],
                body=preference_body,
                errors=(404, 415, 422),
            ),
        },
        "/notifications/units/{unit_id}/contacts": {
            "put": op(
                TAG,
                "set_notification_unit_contacts",
                "单位联络人（交办时同时通知）与联点领导/分管领导（超期第 3 级）",
                ADMIN,
                {"200": answer(free())},
                parameters=[path("unit_id", "单位编号")],
                body=json_body(
                    obj(
                        {},
                        {
                            "contact_leader_id": nullable(integer()),
                            "supervisor_leader_id": nullable(integer()),
                        },
                    )
                ),
                errors=(404, 415, 422),
            )
        },
        **_intake_paths(config),
        "/notifications/callbacks/{user_id}": {
            "put": op(
                TAG,
                "set_notification_callback",
                "对接账号的回单地址与签名密钥（状态变化推送，见 docs/integration.md）",
                ADMIN,
                {"200": answer(free())},
                parameters=[path("user_id", "系统对接账号编号")],
                body=json_body(obj({"url": string()}, {"secret": string("只写")})),
                errors=(404, 415, 422),
            )
        },
    }


TAG_INTAKE = "反馈清单导入"
DESCRIPTION_INTAKE = (
    "省/市测评反馈问题清单（.xlsx：地址、类别、描述、照片文件名）按地点名称匹配，"
    "确认后才创建问题。需要不限辖区、有交办权限的账号。文件不是 .xlsx 415，缺表头或行错误 422，"
    "已处理的行 409"
)
DISPATCH = "issues.dispatch"


def _intake_paths(config: Mapping[str, Any]) -> dict[str, Any]:
    batch_id = path("batch_id", "清单编号")
    row_id = path("row_id", "清单行编号")
    row = ref("intakeRow")
    return {
        "/intake/batches": {
            "post": op(
                TAG_INTAKE,
                "create_intake_batch",
                "上传反馈清单（逐行匹配地点，不创建问题）",
                DISPATCH,
                {"201": answer(ref("intakeBatch"), "已导入待确认")},
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": obj(
                                {"file": string("清单 .xlsx", format="binary")},
                                {
                                    "source": enum(
                                        ["", *config["ISSUE_SOURCES"]], "问题来源（默认 测评反馈）"
                                    )
                                },
                            )
                        }
                    },
                },
                errors=(415, 422),
            )
        },
        "/intake/batches/{batch_id}": {
            "get": op(
                TAG_INTAKE,
                "get_intake_batch",
                "清单及每行的匹配结果（确认队列）",
                DISPATCH,
                {"200": answer(ref("intakeBatch"))},
                parameters=[batch_id],
                errors=(404,),
            )
        },
        "/intake/batches/{batch_id}/confirm-matched": {
            "post": op(
                TAG_INTAKE,
                "confirm_intake_matched",
                "确认所有已匹配的行（创建问题）",
                DISPATCH,
                {"200": answer(obj({"issue_ids": array(integer())}))},
                parameters=[batch_id],
                errors=(404, 422),
            )
        },
        "/intake/rows/{row_id}/confirm": {
            "post": op(
                TAG_INTAKE,
                "confirm_intake_row",
                "确认一行：选定地点（place_id）或地图上的位置（lon/lat），创建问题",
                DISPATCH,
                {"200": answer(row)},
                parameters=[row_id],
                body=json_body(
                    obj({}, {"place_id": integer(), "lon": number(), "lat": number()}),
                    required=False,
                ),
                errors=(404, 409, 415, 422),
            )
        },
        "/intake/rows/{row_id}/skip": {
            "post": op(
                TAG_INTAKE,
                "skip_intake_row",
                "跳过一行（不创建问题）",
                DISPATCH,
                {"200": answer(row)},
                parameters=[row_id],
                errors=(404, 409),
            )
        },
    }


def schemas(config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "notificationQueue": obj(
            {
                "queue_depth": integer("待发送（含重试中）"),
                "held_for_digest": integer(),
                "dead_letters": integer(),
                "oldest_undelivered_seconds": nullable(number()),
            }
        ),
        "notificationChannel": obj(
            {
                "id": integer(),
                "kind": enum(list(CHANNEL_KINDS)),
                "kind_label": string(),
                "name": string(),
                "enabled": boolean(),
                "unit_id": nullable(integer()),
                "config": free(),
                "secrets_set": array(string(), "已设置的密钥名称（从不返回密钥本身）"),
                "updated_at": nullable(instant()),
            }
        ),
        "notificationDelivery": obj(
            {
                "id": integer(),
                "status": enum(list(DELIVERY_STATES)),
                "status_label": string(),
                "attempts": integer(),
                "last_error": text_or_null(),
                "next_attempt_at": nullable(instant()),
                "delivered_at": nullable(instant()),
                "created_at": nullable(instant()),
                "address": string(),
                "message_id": integer(),
                "kind": string(),
                "subject": string(),
                "issue_id": nullable(integer()),
                "channel": nullable(string()),
                "channel_kind": string(),
            }
        ),
        "intakeRow": obj(
            {
                "id": integer(),
                "row_number": integer("清单自己的序号（回报时用）"),
                "address": string(),
                "category": string(),
                "description": string(),
                "photos": array(string()),
                "status": enum(
                    ["matched", "ambiguous", "unmatched", "invalid", "confirmed", "skipped"]
                ),
                "message": string(),
                "candidates": array(free()),
                "place_id": nullable(integer()),
                "issue_id": nullable(integer()),
            }
        ),
        "intakeBatch": obj(
            {
                "id": integer(),
                "filename": string(),
                "source": string(),
                "created_at": nullable(instant()),
                "counts": free("各状态的行数"),
                "rows": array(ref("intakeRow")),
            }
        ),
        "notificationPreference": obj(
            {
                "leader_id": integer(),
                "name": string(),
                "email": text_or_null(),
                "mobile": text_or_null(),
                "channels": nullable(array(string())),
                "quiet_start": text_or_null(),
                "quiet_end": text_or_null(),
                "digest": boolean(),
            }
        ),
    }
