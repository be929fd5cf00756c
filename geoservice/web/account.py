"""Sign-in, sign-out and password change (Chinese pages): blueprint `bp` ("account")."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import login_user, logout_user

from geoservice.accounts import accounts, audit
from geoservice.accounts.auth import bearer_token, current_account, login_session
from geoservice.db import get_session
from geoservice.errors import ApiError

bp = Blueprint("account", __name__, template_folder="templates")


def safe_next(target: str | None) -> str:
    """Only paths of this site (no scheme, no host, no `//evil`) are followed after sign-in."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 32 for c in target)
    ):
        return url_for("web.index")
    return target


def login_policy() -> accounts.LoginPolicy:
    c = current_app.config
    return accounts.LoginPolicy(
        max_failures=c["LOGIN_MAX_FAILURES"],
        lock_minutes=c["LOGIN_LOCK_MINUTES"],
        ip_max_failures=c["LOGIN_IP_MAX_FAILURES"],
        ip_window_s=c["LOGIN_IP_WINDOW_SECONDS"],
    )


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next=next_url, username="")
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")
    db = get_session()
    try:
        user = accounts.authenticate(db, username, password, request.remote_addr, login_policy())
    except accounts.LoginRefused as refused:
        db.commit()  # the failure counters must persist
        response = current_app.make_response(
            (
                render_template(
                    "login.html", next=next_url, username=username, error=refused.message
                ),
                refused.status,
            )
        )
        if refused.retry_after:
            response.headers["Retry-After"] = str(refused.retry_after)
        return response
    audit.record(db, user, "user.login", "user", user.id)
    db.commit()
    session.clear()  # no state from before the sign-in survives it
    login_user(login_session(user))
    session.permanent = True
    if user.must_change_password:
        return redirect(url_for("account.password"))
    return redirect(next_url)


@bp.post("/logout")
def logout():
    account = current_account()
    if account is not None and bearer_token() is None:
        db = get_session()
        accounts.end_sessions(db, account)  # a copied cookie of this session dies too
        db.commit()
    logout_user()
    session.clear()
    return redirect(url_for("account.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def password():
    account = current_account()
    if account is None or account.password_hash is None:
        raise ApiError(403, "该账号没有登录密码（仅使用 API 令牌）")
    if request.method == "GET":
        return render_template("password.html", forced=account.must_change_password)
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    confirm = request.form.get("confirm_password", "")
    db = get_session()
    error = None
    if new != confirm:
        error = "两次输入的新密码不一致"
    else:
        try:
            accounts.change_own_password(
                db, account, current, new, login_policy(), request.remote_addr
            )
        except accounts.WrongPassword as exc:
            db.commit()  # the failure counts toward the account lock
            error = str(exc)
            if account.locked_until is not None:
                logout_user()
                session.clear()
                return redirect(url_for("account.login"))
        except accounts.UserError as exc:
            db.rollback()
            error = str(exc)
    if error:
        return (
            render_template("password.html", forced=account.must_change_password, error=error),
            422,
        )
    db.commit()
    # The session stamp changed with the password: sign this session in again, others end.
    login_user(login_session(account))
    return render_template("password.html", forced=False, done=True)
