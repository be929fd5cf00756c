"""点位 and 测评 over the API, mounted at /api/assessment (blueprint `bp`): site kinds, sites,
点位清单, QR codes, standards versions, rounds, results, scores.

Who may do what (existing actions of geoservice.accounts.permissions, so the permission table is
unchanged): reading kinds and sites needs `layers.read`; rounds, scores and standards need
`rankings.read`; writing kinds, sites, standards and rounds needs `layers.write` and the admin
or planner role (kinds: county-wide accounts only); recording results needs `issues.report`
and the site being assigned to the caller (planners may record any site).
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from geoservice.accounts import audit, scope
from geoservice.accounts.auth import can, require
from geoservice.assessment import kinds as kind_service
from geoservice.assessment import rounds as round_service
from geoservice.assessment import scores as score_service
from geoservice.assessment import sites as site_service
from geoservice.assessment import standards as standard_service
from geoservice.assessment.catalogue import KindRow, SiteCatalogue, load_kinds
from geoservice.db import database, get_session
from geoservice.edge.issues import settings as issue_settings_in_force
from geoservice.edge.json_input import json_object
from geoservice.edge.params import content_disposition, single_args
from geoservice.edge.sites import site_condition, sites_in_scope
from geoservice.errors import ApiError
from geoservice.issues.photos import Upload, prepare
from geoservice.issues.workflow import IssueSettings
from geoservice.models import User
from geoservice.registry import layers

bp = Blueprint("assessment_api", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_UPLOAD = 20 * 1024 * 1024


# --- the catalogue hook (called once by geoservice.api when it builds the catalogue) ----------


def site_catalogue(app, base):
    """The catalogue with one collection per active site kind, read at request time."""
    from flask import has_app_context

    def loader() -> list[KindRow]:
        if has_app_context():
            return load_kinds(get_session())
        session = database(app).session()
        try:
            return load_kinds(session)
        finally:
            session.close()

    spec = layers(app).get("site") if "site" in layers(app) else None
    return SiteCatalogue(base, spec, loader)


# --- helpers ---------------------------------------------------------------------------------


def _manager(action: str = "layers.write") -> User:
    account = require(action)
    if account.role not in ("admin", "planner"):
        raise ApiError(403, "只有创文办（管理员或业务管理账号）可以执行此操作", field="role")
    return account


def _county_wide(account: User) -> None:
    if not scope.for_account(account).everything and account.area_id is not None:
        raise ApiError(403, "点位类别只能由全县（市）范围的账号维护", field="role")


def _body() -> dict[str, Any]:
    return json_object()


def _upload_bytes(name: str = "file", geojson: bool = False) -> bytes:
    upload = request.files.get(name)
    if upload is None:
        raise ApiError(400, "请以 multipart/form-data 上传 .xlsx 文件（字段 file）", field=name)
    data = upload.stream.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise ApiError(413, f"文件超过 {MAX_UPLOAD // 1024 // 1024} MB", field=name)
    if not data.startswith(b"PK") and not (geojson and data.lstrip()[:1] in (b"{", b"\xef")):
        raise ApiError(
            415, "请上传 Excel 工作簿（.xlsx）" + ("或 GeoJSON" if geojson else ""), field=name
        )
    return data


def _xlsx(data: bytes, filename: str, ascii_hint: str) -> Response:
    response = Response(data, mimetype=XLSX)
    response.headers["Content-Disposition"] = content_disposition(filename, ascii_hint)
    return response


def _created(body: Any, location: str | None = None) -> Response:
    response = jsonify(body)
    response.status_code = 201
    if location:
        response.headers["Location"] = location
    return response


def _int_arg(args: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} 应为整数", field=name) from None
    if not lo <= value <= hi:
        raise ApiError(400, f"{name} 应在 {lo} 到 {hi} 之间", field=name)
    return value


def _settings() -> score_service.ScoreSettings:
    return score_service.ScoreSettings.from_config(current_app.config)


def _issue_settings() -> IssueSettings:
    return issue_settings_in_force()


# --- kinds -----------------------------------------------------------------------------------


@bp.get("/kinds")
def kinds_list():
    require("layers.read")
    single_args(())
    return jsonify({"kinds": kind_service.list_kinds(get_session())})


@bp.post("/kinds")
def kinds_create():
    account = _manager()
    _county_wide(account)
    session = get_session()
    kind = kind_service.create_kind(session, _body())
    body = kind_service.kind_json(kind, 0)
    audit.record(session, account, "site_kind.create", "site_kind", kind.id, after=body)
    session.commit()
    return _created(body, url_for("assessment_api.kinds_get", kind_id=kind.id))


@bp.get("/kinds/<int:kind_id>")
def kinds_get(kind_id: int):
    require("layers.read")
    single_args(())
    return jsonify(kind_service.kind_json(kind_service.get_kind(get_session(), kind_id)))


@bp.patch("/kinds/<int:kind_id>")
def kinds_update(kind_id: int):
    account = _manager()
    _county_wide(account)
    session = get_session()
    before = kind_service.kind_json(kind_service.get_kind(session, kind_id))
    kind = kind_service.update_kind(session, kind_id, _body())
    after = kind_service.kind_json(kind)
    audit.record(session, account, "site_kind.update", "site_kind", kind.id, before, after)
    session.commit()
    return jsonify(after)


@bp.delete("/kinds/<int:kind_id>")
def kinds_delete(kind_id: int):
    account = _manager()
    _county_wide(account)
    session = get_session()
    before = kind_service.kind_json(kind_service.get_kind(session, kind_id))
    kind_service.delete_kind(session, kind_id)
    audit.record(session, account, "site_kind.delete", "site_kind", kind_id, before=before)
    session.commit()
    return Response(status=204)


# --- sites -----------------------------------------------------------------------------------


def _visible_site(session, account: User, site_id: int) -> None:
    """404 for a site outside the account's scope, as for one that does not exist."""
    seen = sites_in_scope(session, account, [site_id])
    if seen is not None and site_id not in seen:
        raise ApiError(404, f"没有编号为 {site_id} 的点位", field="id")


def _kept_in_scope(session, account: User, ids: list[int], message: str) -> None:
    """403 (the caller's transaction is rolled back) when a write left a site outside the
    account's area."""
    seen = sites_in_scope(session, account, ids)
    if seen is not None and set(ids) - seen:
        session.rollback()
        raise ApiError(403, message, field="geometry")


@bp.post("/sites")
def sites_create():
    account = _manager()
    session = get_session()
    site = site_service.create_site(session, _body())
    _kept_in_scope(session, account, [site.id], "点位位于您的管辖范围之外，不能在此新增")
    body = site_service.site_json(session, site.id)
    audit.record(session, account, "site.create", "site", site.id, after=body)
    session.commit()
    return _created(body, url_for("assessment_api.sites_get", site_id=site.id))


@bp.get("/sites/<int:site_id>")
def sites_get(site_id: int):
    account = require("layers.read")
    single_args(())
    _visible_site(get_session(), account, site_id)
    return jsonify(site_service.site_json(get_session(), site_id))


@bp.patch("/sites/<int:site_id>")
def sites_update(site_id: int):
    account = _manager()
    session = get_session()
    _visible_site(session, account, site_id)
    before = site_service.site_json(session, site_id)
    site_service.update_site(session, site_id, _body())
    _kept_in_scope(session, account, [site_id], "点位不能移出您的管辖范围")
    after = site_service.site_json(session, site_id)
    audit.record(session, account, "site.update", "site", site_id, before, after)
    session.commit()
    return jsonify(after)


@bp.delete("/sites/<int:site_id>")
def sites_delete(site_id: int):
    account = _manager()
    session = get_session()
    _visible_site(session, account, site_id)
    before = site_service.site_json(session, site_id)
    site_service.delete_site(session, site_id)
    audit.record(session, account, "site.delete", "site", site_id, before=before)
    session.commit()
    return Response(status=204)


@bp.post("/sites/import")
def sites_import():
    """点位清单 (.xlsx) or a GeoJSON FeatureCollection, all-or-nothing; 422 with a per-row
    report when any row is refused."""
    account = _manager()
    data = _upload_bytes(geojson=True)
    session = get_session()
    # A row updates the site of its code: only a site in the account's area (as it is now),
    # and every site written must be in it afterwards.
    may_update = None
    if not scope.for_account(account).everything:

        def may_update(site_id: int) -> bool:
            return site_id in (sites_in_scope(session, account, [site_id]) or ())

    try:
        if data.startswith(b"PK"):
            report = site_service.import_site_list(session, data, may_update=may_update)
        else:
            report = site_service.import_site_features(session, data, may_update=may_update)
    except Exception:
        session.rollback()
        raise
    _kept_in_scope(session, account, report.site_ids, site_service.OUT_OF_SCOPE)
    audit.record(session, account, "site.import", "site", None, after=report.as_dict())
    session.commit()
    return jsonify(report.as_dict())


@bp.get("/sites/export")
def sites_export():
    """The 点位清单 of the sites in the caller's scope; the 点长's phone only for accounts that
    may read the roster (`assignments.read`)."""
    account = require("layers.read")
    args = single_args(("kind",))
    within = site_condition(account)
    data = site_service.export_site_list(
        get_session(), args.get("kind"), within, phones=can("assignments.read")
    )
    return _xlsx(data, "点位清单.xlsx", "sites")


@bp.get("/sites/<int:site_id>/qr")
def sites_qr(site_id: int):
    """The site's QR code (PNG, or SVG with format=svg): opens the report page at the site."""
    account = require("layers.read")
    _visible_site(get_session(), account, site_id)
    args = single_args(("format",))
    kind = args.get("format", "png")
    if kind not in ("png", "svg"):
        raise ApiError(400, "format 只能是 png 或 svg", field="format")
    site = site_service.site_json(get_session(), site_id)
    target = site_service.qr_target(request.host_url, site)
    data = site_service.qr_image(target, kind)
    response = Response(data, mimetype="image/svg+xml" if kind == "svg" else "image/png")
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


# --- standards -------------------------------------------------------------------------------


def _categories() -> list[str]:
    return list(issue_settings_in_force().categories)


@bp.get("/standards")
def standards_list():
    require("rankings.read")
    single_args(())
    return jsonify({"versions": standard_service.list_versions(get_session())})


def _version_rows() -> tuple[Any, list, str]:
    """(name, rows, note) from JSON {name, note, items: [...]} or multipart (name, file)."""
    if request.mimetype == "multipart/form-data":
        rows = standard_service.read_sheet(_upload_bytes())
        return request.form.get("name"), rows, request.form.get("note") or ""
    body = _body()
    return body.get("name"), standard_service.rows_from_tree(body.get("items")), body.get("note")


@bp.post("/standards")
def standards_create():
    account = _manager()
    name, rows, note = _version_rows()
    session = get_session()
    version = standard_service.create_version(session, name, rows, _categories(), note or "")
    body = standard_service.version_json(session, version)
    audit.record(session, account, "standards.create", "standard_version", version.id,
                 after={"name": version.name, "standards": body["standards"]})  # fmt: skip
    session.commit()
    return _created(body, url_for("assessment_api.standards_get", version_id=version.id))


@bp.get("/standards/<int:version_id>")
def standards_get(version_id: int):
    require("rankings.read")
    single_args(())
    session = get_session()
    return jsonify(
        standard_service.version_json(session, standard_service.get_version(session, version_id))
    )


@bp.put("/standards/<int:version_id>")
def standards_replace(version_id: int):
    """Rewrites an unused version (409 once it has results: copy it instead)."""
    account = _manager()
    name, rows, _note = _version_rows()
    session = get_session()
    version = standard_service.replace_version(session, version_id, rows, _categories(), name)
    body = standard_service.version_json(session, version)
    audit.record(session, account, "standards.replace", "standard_version", version.id,
                 after={"name": version.name, "standards": body["standards"]})  # fmt: skip
    session.commit()
    return jsonify(body)


@bp.delete("/standards/<int:version_id>")
def standards_delete(version_id: int):
    account = _manager()
    session = get_session()
    standard_service.delete_version(session, version_id)
    audit.record(session, account, "standards.delete", "standard_version", version_id)
    session.commit()
    return Response(status=204)


@bp.post("/standards/<int:version_id>/copy")
def standards_copy(version_id: int):
    account = _manager()
    body = _body()
    session = get_session()
    version = standard_service.copy_version(session, version_id, body.get("name"))
    out = standard_service.version_json(session, version)
    audit.record(session, account, "standards.copy", "standard_version", version.id,
                 after={"name": version.name, "copied_from": version_id})  # fmt: skip
    session.commit()
    return _created(out, url_for("assessment_api.standards_get", version_id=version.id))


@bp.get("/standards/<int:version_id>/export")
def standards_export(version_id: int):
    require("rankings.read")
    single_args(())
    session = get_session()
    version = standard_service.get_version(session, version_id)
    return _xlsx(
        standard_service.export_sheet(session, version.id),
        f"测评体系-{version.name}.xlsx",
        f"standards-{version.id}",
    )


# --- rounds and results ----------------------------------------------------------------------


@bp.get("/rounds")
def rounds_list():
    require("rankings.read")
    single_args(())
    return jsonify({"rounds": round_service.list_rounds(get_session())})


@bp.post("/rounds")
def rounds_create():
    account = _manager()
    session = get_session()
    found = round_service.create_round(session, _body(), account)
    body = round_service.round_json(session, found)
    audit.record(session, account, "round.create", "assessment_round", found.id, after=body)
    session.commit()
    return _created(body, url_for("assessment_api.rounds_get", round_id=found.id))


@bp.get("/rounds/<int:round_id>")
def rounds_get(round_id: int):
    require("rankings.read")
    single_args(())
    session = get_session()
    return jsonify(round_service.round_json(session, round_service.get_round(session, round_id)))


@bp.get("/rounds/<int:round_id>/sites")
def rounds_sites(round_id: int):
    """The round's sites; `mine=1`: those assigned to the caller (an inspector's list)."""
    account = require("issues.report") if request.args.get("mine") else require("rankings.read")
    args = single_args(("mine",))
    inspector = account.id if args.get("mine") in ("1", "true") else None
    session = get_session()
    rows = round_service.round_sites(session, round_id, inspector)
    if inspector is None:  # the sites in the caller's area (an inspector's own: all of them)
        seen = sites_in_scope(session, account, [r["id"] for r in rows])
        rows = rows if seen is None else [r for r in rows if r["id"] in seen]
    return jsonify({"sites": rows})


@bp.post("/rounds/<int:round_id>/inspectors")
def rounds_inspectors(round_id: int):
    """{"inspector_id": user id, "site_ids": [...]}"""
    account = _manager()
    body = _body()
    session = get_session()
    n = round_service.assign_inspectors(
        session, round_id, body.get("inspector_id"), body.get("site_ids")
    )
    audit.record(session, account, "round.inspectors", "assessment_round", round_id, after=body)
    session.commit()
    return jsonify({"assigned": n})


@bp.get("/rounds/<int:round_id>/sites/<int:site_id>")
def rounds_site(round_id: int, site_id: int):
    account = require("issues.report")
    single_args(())
    session = get_session()
    sheet = round_service.site_sheet(session, round_id, site_id)
    if sheet["inspector_id"] != account.id:  # else: the inspector assigned to it
        if account.role not in ("admin", "planner"):
            require("rankings.read")
        seen = sites_in_scope(session, account, [site_id])
        if seen is not None and site_id not in seen:  # answered as a site not in the round
            raise ApiError(404, f"点位 {site_id} 不在本轮测评中", field="site_id")
    return jsonify(sheet)


def _photo(value: Any, where: str):
    """A photo given inline (base64 / data URL / {data, filename, content_type})."""
    if value in (None, ""):
        return None
    from geoservice.api.issues import _json_uploads

    uploads = _json_uploads([value])
    cfg = _issue_settings()
    return prepare(uploads[0], cfg.photo_limits, cfg.tz, where)


def _entries() -> tuple[dict[str, Any], list[round_service.Entry]]:
    """Fields and entries from JSON, or multipart (`results` a JSON text, photos as files
    named photo_<standard_id>)."""
    cfg = _issue_settings()
    if request.mimetype == "multipart/form-data":
        fields: dict[str, Any] = dict(request.form.items())
        try:
            raw = json.loads(fields.get("results") or "[]")
        except ValueError:
            raise ApiError(400, "results 不是合法的 JSON", field="results") from None
        files = {}
        for name, f in request.files.items():
            if name.startswith("photo_"):
                data = f.stream.read(cfg.photo_limits.max_bytes + 1)
                files[name[len("photo_") :]] = Upload(data, f.filename or name, f.mimetype)
    else:
        fields = _body()
        raw, files = fields.get("results"), {}
    if not isinstance(raw, list):
        raise ApiError(422, "results 必须是数组", field="results")
    entries = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ApiError(422, "每条结果必须是对象", field=f"results[{i}]")
        upload = files.get(str(item.get("standard_id")))
        photo = (
            prepare(upload, cfg.photo_limits, cfg.tz, f"第{i + 1}条的照片")
            if upload is not None and upload.data
            else _photo(item.get("photo"), f"第{i + 1}条的照片")
        )
        entries.append(
            round_service.Entry(
                item.get("standard_id"), item.get("outcome"), item.get("note", ""), photo
            )
        )
    return fields, entries


@bp.post("/rounds/<int:round_id>/results")
def rounds_results(round_id: int):
    """One site's results: {site_id, lon, lat, results: [{standard_id, outcome, note,
    photo}]}; all or nothing."""
    account = require("issues.report")
    fields, entries = _entries()
    session = get_session()
    try:
        results = round_service.submit_results(
            session, layers(), _issue_settings(), round_id, fields.get("site_id"), entries,
            account, fields.get("lon"), fields.get("lat"),
        )  # fmt: skip
    except Exception:
        session.rollback()
        raise
    body = {
        "results": [
            {
                "id": r.id,
                "standard_id": r.standard_id,
                "outcome": r.outcome,
                "issue_id": r.issue_id,
                "far": r.far,
                "distance_m": r.distance_m,
            }
            for r in results
        ]
    }
    audit.record(session, account, "round.results", "assessment_round", round_id,
                 after={"site_id": fields.get("site_id"), **body})  # fmt: skip
    session.commit()
    return _created(body)


@bp.post("/results/<int:result_id>/correction")
def results_correct(result_id: int):
    """A planner's correction: {outcome, reason, note, photo}."""
    account = _manager("issues.dispatch")
    body = _body()
    session = get_session()
    try:
        result = round_service.correct_result(
            session, layers(), _issue_settings(), result_id, body.get("outcome"),
            body.get("reason"), account, body.get("note"), _photo(body.get("photo"), "照片"),
        )  # fmt: skip
    except Exception:
        session.rollback()
        raise
    out = {"id": result.id, "corrects_id": result.corrects_id, "outcome": result.outcome,
           "issue_id": result.issue_id}  # fmt: skip
    audit.record(session, account, "round.correction", "assessment_result", result.id, after=out)
    session.commit()
    return _created(out)


# --- scores ----------------------------------------------------------------------------------


def _of(args: dict[str, str], default: str | None = "street") -> str | None:
    of = args.get("of", default)
    if of is not None and of not in score_service.GROUPINGS:
        raise ApiError(
            400,
            f"of 只能是 {'、'.join(score_service.GROUPINGS)}",
            {"groupings": score_service.GROUPINGS},
            field="of",
        )
    return of


def _key(args: dict[str, str]) -> int | None:
    raw = args.get("key")
    if raw in (None, "", "none"):
        return None
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        raise ApiError(400, "key 应为整数编号（或 none）", field="key")
    return int(raw)


@bp.get("/rounds/<int:round_id>/scores")
def rounds_scores(round_id: int):
    account = require("rankings.read")
    args = single_args(("of",))
    of = _of(args) or "street"
    session = get_session()
    body = score_service.round_scores(session, round_id, of, _settings())
    if of == "site":  # county-wide ranks; a site's own row only in the caller's area
        seen = sites_in_scope(session, account, [r["key"] for r in body["rows"]])
        if seen is not None:
            body = {**body, "rows": [r for r in body["rows"] if r["key"] in seen]}
    return jsonify(body)


@bp.get("/rounds/<int:round_id>/failures")
def rounds_failures(round_id: int):
    account = require("rankings.read")
    args = single_args(("of", "key"))
    of = _of(args, None)
    session = get_session()
    rows = score_service.failures(session, round_id, _settings(), of, _key(args))
    seen = sites_in_scope(session, account, sorted({r["site_id"] for r in rows}))
    rows = rows if seen is None else [r for r in rows if r["site_id"] in seen]
    for r in rows:
        r["photo_url"] = (
            url_for("api.issue_photo", photo_id=r["photo_id"], thumb=1) if r["photo_id"] else None
        )
    return jsonify({"failures": rows})


@bp.get("/trend")
def trend():
    account = require("rankings.read")
    args = single_args(("of", "key"))
    of, key = _of(args, None), _key(args)
    if of == "site" and key is not None:
        _visible_site(get_session(), account, key)
    return jsonify(
        {"rounds": score_service.trend(get_session(), of, key if of else None, _settings())}
    )
