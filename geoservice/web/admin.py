"""Admin pages (Chinese): accounts and the audit log. Blueprint `bp` ("admin")."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from geoservice.accounts import accounts, audit
from geoservice.accounts.auth import current_account, permission_required
from geoservice.accounts.permissions import ACTIONS, INTERACTIVE_ROLES, ROLE_ACTIONS, ROLE_LABELS
from geoservice.db import get_session
from geoservice.edge.params import parse_audit_filters
from geoservice.errors import ApiError
from geoservice.models import AdminArea, Leader, User
from geoservice.vocab import USER_ROLES
from geoservice.web import pickers
from geoservice.web.paging import Page, requested_page

bp = Blueprint("admin", __name__, template_folder="templates")


@bp.app_template_filter("localtime")
def localtime(moment: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) time, or its ISO text as the JSON views give it, shown in the
    deployment's time zone (config TIMEZONE)."""
    if not moment:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(ZoneInfo(current_app.config["TIMEZONE"])).strftime(fmt)


PAGE_SIZE = 100


def _choices() -> dict:
    db = get_session()
    return {
        "roles": [(r, ROLE_LABELS[r]) for r in USER_ROLES],
        "areas": db.execute(
            select(AdminArea.code, AdminArea.name, AdminArea.level).order_by(AdminArea.code)
        ).all(),
        "leaders": db.execute(
            select(Leader.id, Leader.name, Leader.title)
            .where(Leader.active)
            .order_by(Leader.name, Leader.id)
        ).all(),
    }


def _user_or_404(user_id: int) -> User:
    user = get_session().get(User, user_id)
    if user is None:
        raise ApiError(404, f"没有编号为 {user_id} 的账号")
    return user


# A city has tens of thousands of accounts (a 网格员 per grid): the list is searched and shown
# a page at a time, each account with its area and leader read in the page's statements.
USERS_PAGE_ROWS = 200


def _user_page(db: Any) -> dict[str, Any]:
    """The accounts matching the request's `q` (username or name) and `role`, a page of them
    (`page`), and what the template needs to say so."""
    q = request.args.get("q", "").strip()[:64]
    role = request.args.get("role", "")
    where = []
    if q:
        where.append(
            or_(
                User.username.contains(q, autoescape=True),
                User.display_name.contains(q, autoescape=True),
            )
        )
    if role in ROLE_LABELS:
        where.append(User.role == role)
    else:
        role = ""
    total = db.scalar(select(func.count()).select_from(User).where(*where)) or 0
    page = Page(requested_page(), USERS_PAGE_ROWS, total)
    rows = db.scalars(
        select(User)
        .where(*where)
        .options(
            selectinload(User.area).load_only(AdminArea.name, AdminArea.code),  # no outline
            selectinload(User.leader).load_only(Leader.name),
        )
        .order_by(User.username)
        .limit(page.size)
        .offset(page.offset)
    ).all()
    return {
        "users": rows,
        "total": total,
        "q": q,
        "role_filter": role,
        "page": page.number,
        "pages": page.pages,
        "first": page.first,
    }


@bp.get("/admin/users")
@permission_required("users.admin")
def users():
    db = get_session()
    now = db.scalar(select(func.now()))
    return render_template(
        "admin_users.html",
        now=now,
        role_labels=ROLE_LABELS,
        actions=ACTIONS,
        role_actions=ROLE_ACTIONS,
        form={},
        **_user_page(db),
        **_choices(),
    )


@bp.post("/admin/users")
@permission_required("users.admin")
def create_user():
    db = get_session()
    form = request.form
    role = form.get("role", "")
    password = form.get("password", "") or None
    generated = False
    if password is None and role in INTERACTIVE_ROLES:
        password = secrets.token_urlsafe(9) + "7a"
        generated = True
    try:
        leader_id = pickers.picked_number(form.get("leader_id"), "领导")
        user = accounts.create_user(
            db,
            form.get("username", ""),
            role,
            password,
            area_code=pickers.picked(form.get("area_code")) or None,
            leader_id=leader_id,
            display_name=form.get("display_name", "").strip()[:100],
            by=current_account(),
        )
    except (accounts.UserError, ValueError) as exc:
        db.rollback()
        message = (
            str(exc)
            if isinstance(exc, accounts.UserError | pickers.NotInList)
            else "领导编号须为整数"
        )
        return (
            render_template(
                "admin_users.html",
                **_user_page(db),
                now=db.scalar(select(func.now())),
                role_labels=ROLE_LABELS,
                actions=ACTIONS,
                role_actions=ROLE_ACTIONS,
                error=message,
                form=form,
                **_choices(),
            ),
            422,
        )
    if password:
        user.must_change_password = True
    db.commit()
    return render_template(
        "admin_secret.html",
        user=user,
        title="账号已创建",
        password=password if generated else None,
        note="首次登录后须修改密码。" if password else "该账号仅使用 API 令牌。",
    )


@bp.get("/admin/users/<int:user_id>")
@permission_required("users.admin")
def user_detail(user_id: int):
    db = get_session()
    user = _user_or_404(user_id)
    return render_template(
        "admin_user.html",
        user=user,
        tokens=accounts.tokens_of(db, user),
        now=db.scalar(select(func.now())),
        role_labels=ROLE_LABELS,
        entries=db.scalars(audit.query(entity="user", entity_id=str(user.id)).limit(50)).all(),
    )


@bp.post("/admin/users/<int:user_id>/<any(activate, deactivate, unlock):op>")
@permission_required("users.admin")
def user_state(user_id: int, op: str):
    db = get_session()
    user = _user_or_404(user_id)
    try:
        if op == "unlock":
            accounts.unlock(db, user, by=current_account())
        else:
            accounts.set_active(db, user, op == "activate", by=current_account())
    except accounts.UserError as exc:
        db.rollback()
        raise ApiError(409, str(exc)) from exc
    db.commit()
    return redirect(url_for("admin.user_detail", user_id=user.id))


@bp.post("/admin/users/<int:user_id>/reset-password")
@permission_required("users.admin")
def reset_password(user_id: int):
    db = get_session()
    user = _user_or_404(user_id)
    password = secrets.token_urlsafe(9) + "7a"
    try:
        accounts.set_password(db, user, password, by=current_account(), must_change=True)
    except accounts.UserError as exc:
        db.rollback()
        raise ApiError(409, str(exc)) from exc
    db.commit()
    return render_template(
        "admin_secret.html",
        user=user,
        title="密码已重置",
        password=password,
        note="该账号原有的登录会话已失效；下次登录后须修改密码。",
    )


@bp.post("/admin/users/<int:user_id>/tokens")
@permission_required("users.admin")
def issue_token(user_id: int):
    db = get_session()
    user = _user_or_404(user_id)
    raw_scopes = request.form.get("scopes", "").split()
    days_raw = request.form.get("expires_days", "").strip()
    try:
        days = int(days_raw) if days_raw else None
        if days is not None and not 1 <= days <= 3650:
            raise ValueError
    except ValueError as exc:
        raise ApiError(400, "有效天数须为 1–3650 的整数", field="expires_days") from exc
    try:
        if days is None:
            days = int(current_app.config.get("TOKEN_DEFAULT_EXPIRY_DAYS") or 0) or None
        expires = db.scalar(select(func.now())) + timedelta(days=days) if days else None
        token = accounts.issue_token(
            db,
            user,
            label=request.form.get("label", "").strip()[:64] or "web",
            expires_at=expires,
            scopes=raw_scopes or None,
            created_by=current_account(),
        )
    except ValueError as exc:
        db.rollback()
        raise ApiError(400, str(exc), field="scopes") from exc
    db.commit()
    return render_template(
        "admin_secret.html",
        user=user,
        title="API 令牌已签发",
        token=token,
        note="令牌只显示这一次，请立即妥善保存。",
    )


@bp.post("/admin/users/<int:user_id>/tokens/revoke")
@permission_required("users.admin")
def revoke_tokens(user_id: int):
    db = get_session()
    user = _user_or_404(user_id)
    prefix = request.form.get("prefix", "").strip() or None
    accounts.revoke_tokens(db, user, prefix=prefix, by=current_account())
    db.commit()
    return redirect(url_for("admin.user_detail", user_id=user.id))


@bp.get("/admin/audit")
@permission_required("audit.read")
def audit_log():
    db = get_session()
    filters, limit, offset = parse_audit_filters(request.args, default_limit=PAGE_SIZE)
    stmt = audit.query(**filters)
    total = audit.count(db, stmt)
    entries = db.scalars(stmt.limit(limit).offset(offset)).all()
    return render_template(
        "admin_audit.html",
        entries=entries,
        total=total,
        limit=limit,
        offset=offset,
        args=request.args,
    )
