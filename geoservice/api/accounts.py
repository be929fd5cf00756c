"""Account endpoints: GET /api/me (who am I, what may I do, what do I see) and, for admins,
GET/POST /api/users."""

from __future__ import annotations

from flask import jsonify
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from geoservice.accounts import accounts, scope
from geoservice.accounts.auth import current_account, current_token, permission_required
from geoservice.accounts.permissions import ACTIONS, ROLE_ACTIONS, actions_for
from geoservice.api import bp
from geoservice.api.openapi_kit import (
    NOT_BLANK,
    SPACE,
    answer,
    array,
    boolean,
    documented,
    enum,
    instant,
    integer,
    json_body,
    nullable,
    obj,
    op,
    ref,
    string,
    text_or_null,
)
from geoservice.api.openapi_people import TAG_ACCOUNTS
from geoservice.db import get_session
from geoservice.edge.json_input import json_object
from geoservice.edge.params import single_args
from geoservice.errors import ApiError
from geoservice.models import AdminArea, User


@bp.get("/me")
@documented(
    lambda config: op(
        TAG_ACCOUNTS,
        "get_me",
        "当前账号：角色、权限、可见范围；令牌调用时含令牌信息，网页会话时含 CSRF 令牌",
        None,
        {
            "200": answer(
                {
                    "allOf": [
                        ref("account"),
                        obj(
                            {
                                "permissions": array(enum(ACTIONS)),
                                "scope": obj(
                                    {"everything": boolean()},
                                    {
                                        "area": obj(
                                            {
                                                "code": string(),
                                                "name": string(),
                                                "level": string(),
                                            }
                                        ),
                                        "leader_id": integer(),
                                        "issues": enum(["own_reports"]),
                                        "nothing": boolean(),
                                    },
                                ),
                            },
                            {
                                "token": obj(
                                    {
                                        "prefix": string(),
                                        "label": text_or_null(),
                                        "scopes": nullable(array(string())),
                                        "expires_at": nullable(instant()),
                                    }
                                ),
                                "csrf_token": string("网页脚本写入时放在请求头 X-CSRFToken"),
                            },
                        ),
                    ]
                }
            )
        },
    )
)
def me():
    single_args(())
    account = current_account()
    token = current_token()
    body = {
        **accounts.user_summary(account),
        "permissions": actions_for(
            account.role, token.scopes if token else None, via_token=token is not None
        ),
        "scope": scope.describe(get_session(), account),
    }
    if token is not None:
        body["token"] = {
            "prefix": token.prefix,
            "label": token.label,
            "scopes": token.scopes,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        }
    else:
        # Scripts of a signed-in page send this as X-CSRFToken on writes.
        body["csrf_token"] = generate_csrf()
    return jsonify(body)


@bp.get("/users")
@documented(
    lambda config: op(
        TAG_ACCOUNTS,
        "list_users",
        "账号列表",
        "users.admin",
        {"200": answer(obj({"users": array(ref("account"))}))},
    )
)
@permission_required("users.admin")
def users():
    single_args(())
    area_codes = selectinload(User.area).load_only(AdminArea.code)  # not each area's outline
    rows = get_session().scalars(select(User).options(area_codes).order_by(User.username)).all()
    return jsonify({"users": [accounts.user_summary(u) for u in rows]})


@bp.post("/users")
@documented(
    lambda config: op(
        TAG_ACCOUNTS,
        "create_user",
        "新建账号（系统对接账号的令牌在管理页面或 flask users token 生成）",
        "users.admin",
        {"201": answer(ref("account"), "已创建")},
        body=json_body(
            obj(
                {
                    "username": string(
                        "1–64 个字符，不含空白（两端的空白去掉）；已存在 409",
                        pattern=rf"^{SPACE}*{NOT_BLANK}{{1,64}}{SPACE}*(?![\s\S])",
                    ),
                    "role": enum(ROLE_ACTIONS),
                },
                {
                    "password": nullable(
                        string(
                            "初始密码（不填则生成）：至少 8 位、两类字符、不含用户名；"
                            "系统对接账号不能有密码"
                        )
                    ),
                    "area": nullable(string("限定的行政区划代码（须存在）")),
                    "leader_id": nullable(
                        integer("绑定的包保领导（须存在；leader 角色须有领导或区划）")
                    ),
                    "display_name": nullable(string(maxLength=100)),
                },
            )
        ),
        errors=(409, 422),
    )
)
@permission_required("users.admin")
def create_user():
    """Creates an account from JSON {username, role, password?, area?, leader_id?,
    display_name?}; 201 with the account. Integration accounts get their tokens from the
    admin page or `flask users token`."""
    body = json_object(not_json_status=400)  # docs/api.md: the accounts family
    for field in ("username", "role"):
        if not isinstance(body.get(field), str):
            raise ApiError(400, f"缺少字段 {field}", field=field)
    leader_id = body.get("leader_id")
    if leader_id is not None and (not isinstance(leader_id, int) or isinstance(leader_id, bool)):
        raise ApiError(400, "leader_id 须为整数", field="leader_id")
    for field in ("password", "area", "display_name"):
        if body.get(field) is not None and not isinstance(body[field], str):
            raise ApiError(400, f"字段 {field} 须为字符串", field=field)
    if len(body.get("display_name") or "") > 100:
        raise ApiError(422, "显示名称最多 100 个字符", field="display_name")
    db = get_session()
    try:
        user = accounts.create_user(
            db,
            body["username"],
            body["role"],
            body.get("password") or None,
            area_code=body.get("area") or None,
            leader_id=leader_id,
            display_name=body.get("display_name") or "",
            by=current_account(),
        )
    except accounts.UserError as exc:
        db.rollback()
        raise ApiError(exc.status, str(exc), field=exc.field) from exc
    db.commit()
    return jsonify(accounts.user_summary(user)), 201
