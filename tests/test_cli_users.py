from sqlalchemy import select

from geoservice.accounts.auth import user_for_token, verify_password
from geoservice.models import ApiToken, User


def test_users_create_prints_a_working_token_on_its_last_line(app, db_session):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "wangjg", "--role", "planner", "--password", "s3cret-pass"]
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    user = user_for_token(db_session, token)
    assert user is not None and user.username == "wangjg" and user.role == "planner"
    assert verify_password(user.password_hash, "s3cret-pass")
    assert not verify_password(user.password_hash, "wrong")
    stored = db_session.scalars(select(ApiToken.token_hash)).all()
    assert token not in stored  # only the hash is kept


def test_users_create_rejects_an_unknown_role_and_a_duplicate_name(app, db_session):
    runner = app.test_cli_runner()
    bad = runner.invoke(args=["users", "create", "x", "--role", "boss"])
    assert bad.exit_code != 0 and "未知角色" in bad.output
    assert runner.invoke(args=["users", "create", "li", "--role", "viewer"]).exit_code == 0
    dupe = runner.invoke(args=["users", "create", "li", "--role", "viewer"])
    assert dupe.exit_code != 0 and "已存在" in dupe.output


def test_demo_admin_is_created_once_and_each_run_gets_a_fresh_token(app, db_session, tmp_path):
    runner = app.test_cli_runner()
    creds = tmp_path / "demo-admin.txt"
    first = runner.invoke(args=["users", "ensure-demo-admin", "--credentials-file", str(creds)])
    second = runner.invoke(args=["users", "ensure-demo-admin", "--credentials-file", str(creds)])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    password = creds.read_text().strip()
    assert f"密码 {password}" in first.output and f"密码 {password}" in second.output
    token1 = first.output.strip().splitlines()[-1].split()[-1]
    token2 = second.output.strip().splitlines()[-1].split()[-1]
    assert user_for_token(db_session, token1) is None  # revoked by the second run
    admin = user_for_token(db_session, token2)
    assert admin is not None and admin.role == "admin"
    assert db_session.scalar(select(User).where(User.username == "admin")) is not None


def test_a_real_deployment_prints_the_first_admin_once_and_no_secrets_later(
    app, db_session, tmp_path
):
    runner = app.test_cli_runner()
    creds = tmp_path / "first-admin.txt"
    args = ["users", "ensure-demo-admin", "--first-run-only", "--credentials-file", str(creds)]
    first = runner.invoke(args=args)
    assert first.exit_code == 0 and f"密码 {creds.read_text().strip()}" in first.output
    token = first.output.strip().splitlines()[-1].split()[-1]
    later = runner.invoke(args=args)
    assert later.exit_code == 0 and "已有管理员账号" in later.output
    assert "密码" not in later.output and "gs_" not in later.output
    assert user_for_token(db_session, token) is not None  # the first token is not revoked


def _expiry_hours(db_session, token: str) -> float | None:
    from sqlalchemy import func

    from geoservice.accounts.accounts import token_digest

    row = db_session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if row.expires_at is None:
        return None
    return (row.expires_at - db_session.scalar(select(func.now()))).total_seconds() / 3600


def test_the_first_admin_file_is_private_from_the_start_and_the_secrets_are_short_lived(
    app, db_session, tmp_path, monkeypatch
):
    """The password file is created 0600 (not created readable and chmod-ed later: with the
    chmod gone it is still private), the printed token expires within a day, and the first
    sign-in must change the password."""
    import os
    import pathlib

    monkeypatch.setattr(pathlib.Path, "chmod", lambda self, mode: None)
    old = os.umask(0o022)
    try:
        creds = tmp_path / "first-admin.txt"
        args = ["users", "ensure-demo-admin", "--first-run-only", "--credentials-file", str(creds)]
        first = app.test_cli_runner().invoke(args=args)
    finally:
        os.umask(old)
    assert first.exit_code == 0, first.output
    assert creds.stat().st_mode & 0o777 == 0o600
    token = first.output.strip().splitlines()[-1].split()[-1]
    assert 0 < _expiry_hours(db_session, token) <= 24
    admin = db_session.scalar(select(User).where(User.username == "admin"))
    assert admin.must_change_password


def test_tokens_expire_by_default_after_the_configured_days(app, db_session, monkeypatch):
    runner = app.test_cli_runner()
    made = runner.invoke(args=["users", "create", "zhaoq", "--role", "viewer"])
    assert made.exit_code == 0, made.output
    hours = _expiry_hours(db_session, made.output.strip().splitlines()[-1])
    assert hours is not None and 89 * 24 < hours <= 90 * 24
    longer = runner.invoke(args=["users", "token", "zhaoq", "--expires-days", "365"])
    assert 364 * 24 < _expiry_hours(db_session, longer.output.strip().splitlines()[-1]) <= 365 * 24
    monkeypatch.setitem(app.config, "TOKEN_DEFAULT_EXPIRY_DAYS", 0)  # 0: tokens never expire
    forever = runner.invoke(args=["users", "token", "zhaoq"])
    assert _expiry_hours(db_session, forever.output.strip().splitlines()[-1]) is None
