"""包保 pages (Chinese, server-rendered): units, leaders, a place's responsibility (我的包保, the
coverage audit and the Excel roster are in web/coverage.py). Forms post back here and call the
same services as the JSON API; access goes through geoservice.edge.responsibility.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import (
    session as flask_session,
)

from geoservice.accounts.auth import can, current_account
from geoservice.areas import service_area
from geoservice.db import get_session
from geoservice.edge.responsibility import (
    COUNTY_ONLY,
    READ,
    WRITE,
    assignable_leader_ids,
    assignment_place_where,
    can_edit,
    check_holdings_in_scope,
    check_leader_visible,
    check_leader_writable,
    check_place_visible,
    check_unit_writable,
    only_visible_assignments,
    place_visibility,
    visible_leader_ids,
    visible_place_ids,
    whole_county,
)
from geoservice.edge.vocabularies import assignable_roles
from geoservice.edge.vocabularies import in_force as vocab_in_force
from geoservice.errors import ApiError
from geoservice.models import User
from geoservice.placegeom import places_collection
from geoservice.registry import layers
from geoservice.responsibility import myareas
from geoservice.responsibility import responsibility as resp
from geoservice.service_errors import Forbidden
from geoservice.web import bp, pickers
from geoservice.web.featuremap import MapLayer, feature_map

# ---------------------------------------------------------------------------------------------
# Access and forms.


# A page refused (status, Chinese message): the app's error page renders it (geoservice.errors).
PageError = ApiError


@bp.app_context_processor
def _forms() -> dict[str, Any]:
    return {
        "can_edit": can_edit,
        "whole_county": whole_county,
        "account": current_account(),
        # what a refused form held, for the page it goes back to (once)
        "kept": flask_session.pop(KEPT_FORM, None) or {},
    }


KEPT_FORM = "kept_form"


def page(action: str, county: bool = False) -> Callable:
    """A page needing `action` (and, with `county`, an account not bound to an area or a
    leader). Sign-in and CSRF are enforced app-wide (geoservice.accounts.auth,
    geoservice.accounts.security)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                account = current_account()
            except ApiError as exc:
                raise PageError(401, exc.error) from None
            if account is None:
                raise PageError(401, "请先登录后再访问此页面")
            if not can(action):
                raise PageError(403, "当前账号无权访问此页面")
            if county and not whole_county(account):
                raise PageError(403, COUNTY_ONLY)
            try:
                return view(*args, **kwargs)
            except ApiError as exc:
                raise PageError(exc.status, exc.error) from None

        wrapper.permission = action  # type: ignore[attr-defined]
        return wrapper

    return decorator


def page_account() -> User:
    account = current_account()
    assert account is not None
    return account


def _back(default: str) -> Response:
    target = request.form.get("next") or default
    if not target.startswith("/") or target.startswith("//"):
        target = default
    return redirect(target)


def _act(action: Callable[[], str], default: str) -> Response:
    """Runs a form action; flashes its message or the service's error; redirects back."""
    session = get_session()
    try:
        message = action()
        session.commit()
        flash(message, "ok")
    except resp.ServiceError as exc:
        session.rollback()
        flash(exc.message, "error")
        # The form comes back as typed, so that only the mistake is to be corrected.
        flask_session[KEPT_FORM] = {
            k: v[:500] for k, v in request.form.items() if k not in ("csrf_token", "next")
        }
    return _back(default)


def _tz() -> str:
    return current_app.config["TIMEZONE"]


def _form_instant(name: str):
    return resp.parse_instant(request.form.get(name), _tz(), name)


def _check_visible(leader_id: int) -> None:
    check_leader_visible(get_session(), page_account(), leader_id)


def _check_writable(leader_id: int | None = None, unit_id: int | None = None) -> None:
    """Writes check the same scope as reads (responsibility_access): 404 otherwise."""
    try:
        if unit_id is not None:
            check_unit_writable(get_session(), page_account(), unit_id)
        check_leader_writable(get_session(), page_account(), leader_id)
    except ApiError as exc:
        raise PageError(404, exc.error) from None


def _holdings_in_scope(leader_id: int, action: str) -> None:
    """check_holdings_in_scope, as a service refusal the page flashes."""
    try:
        check_holdings_in_scope(get_session(), page_account(), leader_id, action)
    except ApiError as exc:
        raise Forbidden(exc.error) from None


def _check_place(place_id: int) -> None:
    check_place_visible(get_session(), page_account(), place_id)


def layer_styles() -> dict[str, dict[str, Any]]:
    return {spec.name: dict(spec.style) for spec in layers()}


def _local(dt):

    return dt.astimezone(ZoneInfo(_tz())) if dt else None


@bp.app_template_filter("day")
def _day_filter(value) -> str:
    local = _local(value)
    return f"{local:%Y-%m-%d}" if local else ""


def place_url_template() -> str:
    return url_for("web.place_page", place_id=0).replace("/0/", "/{place_id}/")


def places_map(collection: dict[str, Any], name: str, link: bool = False) -> dict[str, Any]:
    extent = service_area.extent(get_session(), layers())
    return feature_map(
        [
            MapLayer(
                name,
                collection,
                {"color": "#b71c1c", "weight": 2, "fillOpacity": 0.2},
                fields=("layer_title", "code", "name"),
                aliases=("图层", "编码", "名称"),
                style_by_layer=layer_styles(),
                link=(place_url_template(), "查看 / 调整包保") if link else None,
            )
        ],
        fallback_extent=extent,
    )


# ---------------------------------------------------------------------------------------------
# Units.


@bp.get("/units")
@page(READ)
def units_page():
    return render_template("resp/units.html", units=resp.unit_rows(get_session()))


@bp.post("/units")
@page(WRITE)
def units_create_form():
    def action() -> str:
        unit = resp.create_unit(
            get_session(),
            request.form.get("name"),
            request.form.get("is_lead") == "on",
            by=page_account(),
        )
        return f"已新建单位“{unit.name}”"

    return _act(action, url_for("web.units_page"))


@bp.post("/units/<int:unit_id>")
@page(WRITE)
def units_update_form(unit_id: int):
    _check_writable(unit_id=unit_id)
    changes = {
        k: (request.form[k] == "1" if k != "name" else request.form[k])
        for k in ("name", "is_lead", "active")
        if k in request.form
    }

    def action() -> str:
        unit = resp.update_unit(get_session(), unit_id, changes, by=page_account())
        return f"已更新单位“{unit.name}”"

    return _act(action, url_for("web.units_page"))


@bp.post("/units/<int:unit_id>/delete")
@page(WRITE)
def units_delete_form(unit_id: int):
    _check_writable(unit_id=unit_id)

    def action() -> str:
        name = resp.get_unit(get_session(), unit_id).name
        resp.delete_unit(get_session(), unit_id, by=page_account())
        return f"已删除单位“{name}”"

    return _act(action, url_for("web.units_page"))


# ---------------------------------------------------------------------------------------------
# Leaders.


def _leader_form() -> dict[str, Any]:
    data: dict[str, Any] = {
        k: request.form.get(k, "") for k in ("name", "title", "phone", "level", "unit_id")
    }
    data["is_unit_head"] = request.form.get("is_unit_head") == "on"
    return data


@bp.get("/leaders")
@page(READ)
def leaders_page():
    session = get_session()
    unit_id = request.args.get("unit_id", type=int)
    active = request.args.get("active", "1")
    rows = resp.leader_rows(
        session,
        unit_id=unit_id,
        active=None if active == "all" else active == "1",
        query=request.args.get("q") or None,
        ids=visible_leader_ids(session, page_account()),
        place_where=assignment_place_where(session, page_account()),
    )
    return render_template(
        "resp/leaders.html",
        leaders=rows,
        units=resp.unit_rows(session),
        levels=vocab_in_force().levels,
        unit_id=unit_id,
        active=active,
        q=request.args.get("q", ""),
        layer_specs=list(layers()),
        overview=whole_county(page_account()),
    )


@bp.post("/leaders")
@page(WRITE)
def leaders_create_form():
    created: dict[str, int] = {}

    def action() -> str:
        leader = resp.create_leader(
            get_session(), _leader_form(), vocab_in_force().levels, by=page_account()
        )
        created["id"] = leader.id
        return f"已新建包保领导 {leader.name}"

    response = _act(action, url_for("web.leaders_page"))
    if created:
        return redirect(url_for("web.leader_page", leader_id=created["id"]))
    return response


def picked_leader_id(value: str | None) -> int:
    """The leader a form names: a number, or an entry of the page's list of leaders."""
    try:
        leader_id = pickers.picked_number(value, "领导")
    except pickers.NotInList as exc:
        raise resp.Invalid(str(exc), field="leader_id") from None
    if leader_id is None:
        raise resp.Invalid("请选择领导", field="leader_id")
    return leader_id


@bp.get("/leaders/<int:leader_id>")
@page(READ)
def leader_page(leader_id: int):
    session = get_session()
    _check_visible(leader_id)
    try:
        leader = resp.get_leader(session, leader_id)
    except resp.NotFound as exc:
        raise PageError(404, exc.message) from None
    titles = {spec.name: spec.title for spec in layers()}
    # A leader the account may read can hold places outside its area: only visible ones.
    account = page_account()
    every = resp.assignments(session, leader_ids=[leader.id], include_history=True)
    every = only_visible_assignments(session, account, every)
    history = [a for a in every if a.valid_to is not None]
    active = [a for a in every if a.valid_to is None]
    shown = visible_place_ids(session, account, [a.place_id for a in active])
    now = resp.now()
    collection = myareas.held_places_geojson(session, layers(), [leader.id], now, only_places=shown)
    visible_leaders = visible_leader_ids(session, account)
    return render_template(
        "resp/leader.html",
        leader=leader,
        held=myareas.held_places(session, layers(), [leader.id], now, only_places=shown),
        active=active,
        history=history,
        titles=titles,
        map=places_map(collection, "包保地点", link=can_edit(page_account())),
        units=resp.unit_rows(session),
        levels=vocab_in_force().levels,
        roles=assignable_roles(),
        layer_specs=list(layers()),
        others=[
            x
            for x in resp.leader_rows(session, active=True, ids=visible_leaders)
            if x["id"] != leader.id
        ],
    )


@bp.post("/leaders/<int:leader_id>")
@page(WRITE)
def leader_update_form(leader_id: int):
    _check_writable(leader_id)

    def action() -> str:
        leader = resp.update_leader(
            get_session(),
            leader_id,
            _leader_form(),
            vocab_in_force().levels,
            by=page_account(),
        )
        return f"已保存 {leader.name} 的信息"

    return _act(action, url_for("web.leader_page", leader_id=leader_id))


@bp.post("/leaders/<int:leader_id>/deactivate")
@page(WRITE)
def leader_deactivate_form(leader_id: int):
    _check_writable(leader_id)

    def action() -> str:
        _holdings_in_scope(leader_id, "停用")
        ended = resp.deactivate_leader(
            get_session(), leader_id, _form_instant("at"), by=page_account()
        )
        return f"已停用，结束包保责任 {len(ended)} 项（历史保留）"

    return _act(action, url_for("web.leader_page", leader_id=leader_id))


@bp.post("/leaders/<int:leader_id>/activate")
@page(WRITE)
def leader_activate_form(leader_id: int):
    _check_writable(leader_id)

    def action() -> str:
        resp.update_leader(
            get_session(),
            leader_id,
            {"active": True},
            vocab_in_force().levels,
            by=page_account(),
        )
        return "已重新启用"

    return _act(action, url_for("web.leader_page", leader_id=leader_id))


@bp.post("/leaders/<int:leader_id>/delete")
@page(WRITE)
def leader_delete_form(leader_id: int):
    _check_writable(leader_id)
    session = get_session()
    try:
        name = resp.get_leader(session, leader_id).name
        _holdings_in_scope(leader_id, "删除")
        resp.delete_leader(session, leader_id, by=page_account())
        session.commit()
    except resp.ServiceError as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("web.leader_page", leader_id=leader_id))
    flash(f"已删除 {name}", "ok")
    return redirect(url_for("web.leaders_page"))


@bp.post("/leaders/<int:leader_id>/assign")
@page(WRITE)
def leader_assign_form(leader_id: int):
    """Assign this leader to a feature chosen by layer + code (or unique name)."""
    _check_writable(leader_id)
    form = request.form

    def action() -> str:
        session = get_session()
        layer = form.get("layer", "")
        if layer not in layers():
            raise resp.Invalid("请选择图层", field="layer")
        place = resp.find_place_by_code_or_name(  # another street's places: as unknown ones
            session, layer, form.get("code"), place_visibility(page_account())
        )
        result = resp.assign(
            session,
            leader_id=leader_id,
            place_id=place.id,
            role=form.get("role"),
            roles=assignable_roles(),
            is_primary=form.get("is_primary") == "on",
            valid_from=_form_instant("valid_from"),
            note=form.get("note"),
            by=page_account(),
            replace_primary=form.get("replace_primary") == "on",
        )
        replaced = "，".join(f"原主要负责人 {a.leader.name} 的责任已结束" for a in result.closed)
        return f"已将“{place.name}”（{place.code}）分配为{result.assignment.role}" + (
            f"；{replaced}" if replaced else ""
        )

    return _act(action, url_for("web.leader_page", leader_id=leader_id))


# ---------------------------------------------------------------------------------------------
# Assignments (end / reassign) and a place's responsibility page.


def _check_assignment(assignment_id: int) -> None:
    """404 worded as for an unknown id when its place lies outside the account's scope (the
    answer must not tell it exists, nor name its place)."""
    unknown = f"没有编号为 {assignment_id} 的包保记录"
    try:
        _check_place(resp.get_assignment(get_session(), assignment_id).place_id)
    except (resp.NotFound, ApiError):
        raise PageError(404, unknown) from None


@bp.post("/assignments/<int:assignment_id>/end")
@page(WRITE)
def assignment_end_form(assignment_id: int):
    _check_assignment(assignment_id)

    def action() -> str:
        a = resp.end_assignment(
            get_session(),
            assignment_id,
            _form_instant("at"),
            request.form.get("note"),
            by=page_account(),
        )
        return f"已结束 {a.leader.name} 对“{a.place.name}”的{a.role}责任"

    return _act(action, url_for("web.leaders_page"))


@bp.post("/assignments/<int:assignment_id>/reassign")
@page(WRITE)
def assignment_reassign_form(assignment_id: int):
    _check_assignment(assignment_id)
    if request.form.get("leader_id"):
        _check_writable(picked_leader_id(request.form.get("leader_id")))

    def action() -> str:
        result = resp.reassign(
            get_session(),
            assignment_id,
            picked_leader_id(request.form.get("leader_id")),
            _form_instant("at"),
            request.form.get("note"),
            by=page_account(),
        )
        new, old = result.assignment, result.closed[0]
        return f"“{new.place.name}”的{new.role}已由 {old.leader.name} 调整为 {new.leader.name}"

    return _act(action, url_for("web.leaders_page"))


@bp.get("/places/find")
@page(READ)
def place_find():
    layer = request.args.get("layer", "")
    if layer not in layers():
        raise PageError(400, "请选择图层")
    try:
        place = resp.find_place_by_code_or_name(
            get_session(), layer, request.args.get("code"), place_visibility(current_account())
        )
    except resp.ServiceError as exc:
        raise PageError(exc.status, exc.message) from None
    _check_place(place.id)
    return redirect(url_for("web.place_page", place_id=place.id))


@bp.get("/places/<int:place_id>/responsibility")
@page(READ)
def place_page(place_id: int):
    session = get_session()
    _check_place(place_id)
    try:
        place = resp.get_place(session, place_id)
    except resp.NotFound as exc:
        raise PageError(404, exc.message) from None
    rows = resp.assignments(session, place_id=place.id, include_history=True)
    collection = places_collection(session, layers(), [place.id])
    return render_template(
        "resp/place.html",
        place=place,
        title=layers().get(place.layer).title if place.layer in layers() else place.layer,
        active=[a for a in rows if a.valid_to is None],
        history=[a for a in rows if a.valid_to is not None],
        map=places_map(collection, place.name),
        leaders=resp.leader_rows(  # those the caller may assign (geoservice.edge.responsibility)
            session, active=True, ids=assignable_leader_ids(session, page_account())
        ),
        roles=assignable_roles(),
        default_roles=layers().get(place.layer).roles if place.layer in layers() else (),
    )


@bp.post("/places/<int:place_id>/assign")
@page(WRITE)
def place_assign_form(place_id: int):
    form = request.form
    _check_place(place_id)
    if form.get("leader_id"):  # as POST /api/assignments: the leader must be the account's too
        _check_writable(picked_leader_id(form.get("leader_id")))

    def action() -> str:
        result = resp.assign(
            get_session(),
            leader_id=picked_leader_id(form.get("leader_id")),
            place_id=place_id,
            role=form.get("role"),
            roles=assignable_roles(),
            is_primary=form.get("is_primary") == "on",
            valid_from=_form_instant("valid_from"),
            note=form.get("note"),
            by=page_account(),
            replace_primary=form.get("replace_primary") == "on",
        )
        return f"已分配 {result.assignment.leader.name} 为{result.assignment.role}"

    return _act(action, url_for("web.place_page", place_id=place_id))
