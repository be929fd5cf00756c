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
