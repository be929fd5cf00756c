"""Staff pages of the citizens package (signed in): the 群众反映 overview (随手拍 waiting for
screening, 不满意 waiting for a decision) and one issue's citizen side (ticket, the reporter's
phone for planners, "me too", public switches, photo approvals, 回访 and decisions)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import and_, func, select, text

from geoservice.accounts import scope
from geoservice.accounts.auth import can, current_account
from geoservice.citizens import followup, intake, publish
from geoservice.citizens.models import CitizenFeedback
from geoservice.db import get_session
from geoservice.edge.issues import settings as issue_settings_in_force
from geoservice.edge.rankings import settings as ranking_settings
from geoservice.edge.responsibility import assignable_leader_ids, leader_writable
from geoservice.issues.workflow import IssueSettings
from geoservice.models import Issue
from geoservice.ranking import board
from geoservice.ranking.periods import PeriodError, parse_period
from geoservice.registry import layers
from geoservice.service_errors import ServiceError

bp = Blueprint("citizens", __name__, url_prefix="/citizens", template_folder="templates")


def _refuse(status: int, message: str) -> None:
    abort(make_response(render_template("error.html", status=status, message=message), status))


def _visible(issue_id: int) -> Issue:
    account = current_account()
    if not can("issues.read", "issues"):
        _refuse(403, "当前账号无权查看问题")
    issue = scope.visible_issue(get_session(), account, issue_id)
    if issue is None:
        _refuse(404, f"没有编号为 {issue_id} 的问题")
    return issue


def _planner() -> None:
    if not can("issues.dispatch", "issues"):
        _refuse(403, "只有督办人员（创文办）可以执行此操作")


def _settings() -> IssueSettings:
    return issue_settings_in_force()


def _act(issue_id: int, action: Callable[[], str]):
    """Runs a form action in one transaction; flashes its message or the service's error."""
    session = get_session()
    try:
        message = action()
        session.commit()
        flash(message, "ok")
    except ServiceError as exc:
        session.rollback()
        flash(exc.message, "error")
    return redirect(url_for("citizens.issue_page", issue_id=issue_id), 303)


# The oldest citizen reports still to accept are listed; the heading says how many wait.
WAITING_LISTED = 200


@bp.get("/")
def overview():
    account = current_account()
    if not can("issues.read", "issues"):
        _refuse(403, "当前账号无权查看问题")
    session = get_session()
    is_waiting = and_(
        Issue.source == intake.SOURCE, Issue.status == "reported", scope.issue_filter(account)
    )
    waiting = session.scalars(
        select(Issue).where(is_waiting).order_by(Issue.reported_at).limit(WAITING_LISTED)
    ).all()
    waiting_total = session.scalar(select(func.count()).select_from(Issue).where(is_waiting))
    pending = [
        f
        for f in followup.pending(session)
        if scope.visible_issue(session, account, f.issue_id) is not None
    ]
    return render_template(
        "citizens/overview.html",
        waiting=waiting,
        waiting_total=waiting_total,
        pending=pending,
        tz=_settings().tz,
        boards=board.boards(session, limit=20),
        can_publish=can("issues.dispatch", "issues") and can("rankings.read"),
    )


def _publisher() -> None:
    if not (can("issues.dispatch", "issues") and can("rankings.read")):
        _refuse(403, "只有督办人员（创文办）可以发布红黑榜")


@bp.post("/boards")
def publish_board():
    """Publishes the 红黑榜 of units of a period (form: period=week|month|quarter, from)."""
    _publisher()
    session = get_session()
    tz = _settings().tz
    try:
        period = parse_period(
            request.form.get("period"),
            request.form.get("from"),
            None,
            tz,
            datetime.now(UTC).astimezone(tz).date(),
        )
        if period.kind == "custom":
            raise PeriodError("红黑榜按周、月或季度发布", "period")
        published = board.publish_board(
            session,
            layers(),
            period,
            ranking_settings(period),  # the rules in force at its start, as the office's ranking
            current_account().id,
        )
        session.commit()
        flash(f"已发布 {published.title} 红黑榜", "ok")
    except (PeriodError, ServiceError) as exc:
        session.rollback()
        flash(getattr(exc, "message", str(exc)), "error")
    return redirect(url_for("citizens.overview"), 303)


@bp.post("/boards/<int:board_id>/withdraw")
def withdraw_board(board_id: int):
    _publisher()
    session = get_session()
    try:
        board.withdraw(session, board_id)
        session.commit()
        flash("已撤回该红黑榜", "ok")
    except ServiceError as exc:
        session.rollback()
        flash(exc.message, "error")
    return redirect(url_for("citizens.overview"), 303)


@bp.get("/issues/<int:issue_id>")
def issue_page(issue_id: int):
    issue = _visible(issue_id)
    session = get_session()
    view = publish.staff_view(session, _settings(), issue_id)
    planner = can("issues.dispatch", "issues")
    if not planner:
        view["phone"] = None
    leaders = []
    if planner and any(
        f["answer"] == "unsatisfied" and not f["decision"] for f in view["feedback"]
    ):
        rows = session.execute(
            text(
                "SELECT l.id, l.name, u.name AS unit FROM leaders l"
                " LEFT JOIN units u ON u.id = l.unit_id WHERE l.active ORDER BY u.name, l.name"
            )
        ).all()
        allowed = assignable_leader_ids(session, current_account())  # the caller's area's
        leaders = rows if allowed is None else [r for r in rows if r.id in set(allowed)]
    close = intake.last_close_event(session, issue_id) if issue.status == "closed" else None
    unanswered = close is not None and (
        session.scalar(select(CitizenFeedback.id).where(CitizenFeedback.close_event_id == close.id))
        is None
    )
    return render_template(
        "citizens/issue.html",
        issue=issue,
        v=view,
        planner=planner,
        leaders=leaders,
        answers=followup.FEEDBACK_ANSWERS,
        can_record=planner and unanswered,
        public_on=bool(current_app.config.get("CITIZENS_PUBLIC")),
    )


@bp.post("/issues/<int:issue_id>/public")
def set_public(issue_id: int):
    _visible(issue_id)
    _planner()
    form = request.form
    own = {p["id"] for p in publish.staff_view(get_session(), _settings(), issue_id)["photos"]}
    chosen = {int(v) for v in form.getlist("approved") if v.isdigit()}

    def action() -> str:
        publish.set_public(
            get_session(),
            issue_id,
            current_account().id,
            sensitive=form.get("sensitive") == "1",
            published=form.get("published") == "1",
            approve=chosen & own,
            revoke=own - chosen,
        )
        return "公开设置已保存"

    return _act(issue_id, action)


@bp.post("/issues/<int:issue_id>/feedback")
def record_feedback(issue_id: int):
    """A 回访 answer taken by phone (热线/电话回访)."""
    _visible(issue_id)
    _planner()
    form = request.form

    def action() -> str:
        followup.answer(
            get_session(),
            issue_id,
            form.get("answer"),
            form.get("comment"),
            channel=form.get("channel") or "staff",
        )
        return "回访结果已记录"

    return _act(issue_id, action)


@bp.post("/feedback/<int:feedback_id>/decision")
def decide(feedback_id: int):
    session = get_session()
    feedback = session.get(CitizenFeedback, feedback_id)
    if (
        feedback is None
        or scope.visible_issue(session, current_account(), feedback.issue_id) is None
    ):
        _refuse(404, f"没有编号为 {feedback_id} 的回访")
    _planner()
    form = request.form
    raw_leader = form.get("leader_id") or ""

    def action() -> str:
        decided = followup.decide(
            get_session(),
            _settings(),
            feedback_id,
            form.get("decision"),
            current_account(),
            form.get("note") or "",
            int(raw_leader) if raw_leader.isdigit() else None,
            allows=lambda a: can(a, "issues"),
            leader_allowed=lambda lid: leader_writable(session, current_account(), lid),
        )
        return "已重新交办" if decided.decision == "reopened" else "已维持销号"

    return _act(feedback.issue_id, action)
