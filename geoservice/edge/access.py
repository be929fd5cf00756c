"""Who may read and write the collections: the one place the features API decides.

Actions come from the permission table (geoservice.accounts.permissions): a layer collection is read
with `layers.read` and written with `layers.write`, the issues collection is read with
`issues.read` (it is read-only here). Token scopes narrow per collection. Which rows an
account sees is geoservice.accounts.scope's rule, turned here into SQL conditions for the feature
queries; every write is recorded in the audit log (geoservice.accounts.audit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import Flask, current_app, request
from sqlalchemy import text
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from geoservice.accounts import audit, scope
from geoservice.accounts.auth import can, current_account, require
from geoservice.accounts.permissions import ANY_COLLECTION
from geoservice.catalogue.catalogue import ISSUES, Catalogue, Collection
from geoservice.errors import ApiError
from geoservice.models import User

CATALOGUE = "geoservice.catalogue"  # app.extensions key: the catalogue create_app built


def catalogue(app: Flask | None = None) -> Catalogue:
    """The app's collections (layers + issues), built once by create_app."""
    return (app or current_app).extensions[CATALOGUE]


def collection_or_404(collection_id: str) -> Collection:
    collection = catalogue().get(collection_id)
    if collection is None:
        raise ApiError(
            404,
            f"没有名为 {collection_id!r} 的集合",
            {"collections": catalogue().ids},
            field="collectionId",
        )
    return collection


def read_action(collection: Collection) -> str:
    return "issues.read" if collection.id == ISSUES else "layers.read"


def collection_read(view: Callable) -> Callable:
    """The view serves one collection (URL variable `collection_id`): 401/403 unless the
    caller may read it. Unknown collections fall through to the view's 404."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        coll = catalogue().get(kwargs.get("collection_id", ""))
        if coll is None:  # unknown: 404 for anyone who may read some collection
            require("layers.read", ANY_COLLECTION)
        else:
            require(read_action(coll), coll.id)
        return view(*args, **kwargs)

    return wrapper


def signed_in(view: Callable) -> Callable:
    """Any account (the landing page, conformance, the OpenAPI document)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_account() is None:
            raise ApiError(401, "请先登录或提供 API 令牌（Authorization: Bearer …）")
        return view(*args, **kwargs)

    return wrapper


def readable(catalogue: Catalogue) -> list[Collection]:
    """The collections the caller may read (a token may be scoped to some)."""
    return [c for c in catalogue if can(read_action(c), c.id)]


def _request_collection() -> Collection | None:
    from geoservice.edge.access import catalogue

    collection_id = (request.view_args or {}).get("collection_id")
    return catalogue().get(collection_id) if collection_id else None


def read_only_allow() -> str:
    """The methods the request's URL serves when its collection is read-only: those of the
    routes matching it, less the generic feature writes (`/collections/<collection_id>/…`)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"):
        try:
            rule, _ = adapter.match(method=method, return_rule=True)
        except HTTPException:
            continue
        if method in {"POST", "PUT", "PATCH", "DELETE"} and "<collection_id>" in rule.rule:
            sites = getattr(_request_collection(), "accepts_sites", False)
            if not (sites and method == "POST" and rule.rule.endswith("/items")):
                continue
        allowed.append(method)
    return ", ".join(allowed)


def routed_allow() -> str | None:
    """`Allow` for a 405 raised by routing (no route of the URL takes the method) on a
    read-only collection's URL: the generic feature writes matched the URL but refuse it, so
    they are not named (read_only_allow). None: routing's own list is right."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    try:
        _, args = adapter.match(method="GET")
    except HTTPException:
        return None
    collection_id = args.get("collection_id")
    collection = catalogue().get(collection_id) if collection_id else None
    if collection is None or collection.writable:
        return None
    return read_only_allow()


def check_write(collection: Collection) -> User:
    """Raises unless the caller may change features of `collection`; returns the caller."""
    if not collection.writable:
        require(read_action(collection), collection.id)
        raise ApiError(
            405,
            f"集合 {collection.id} 在此接口只读",
            getattr(collection, "write_hint", None) or "问题的上报与流转请使用问题接口",
            field="collectionId",
            headers={"Allow": read_only_allow()},
        )
    return require("layers.write", collection.id)


def scope_condition(account: User | None, collection: Collection) -> tuple[str, dict] | None:
    """SQL restricting `collection` (aliases of its base query) to what `account` sees;
    None when the account sees everything."""
    if scope.for_account(account).everything and not (
        collection.id == ISSUES and scope.for_account(account).own_reports_of is not None
    ):
        return None
    if collection.id == ISSUES:
        return scope.issue_sql(account, alias="i")
    return scope.place_sql(account, geom="l.geom", place_id="p.id")


def visible(session: Session, account: User | None, collection: Collection, ids: list[int]) -> bool:
    """Are all these features of `collection` inside the account's scope?"""
    condition = scope_condition(account, collection)
    if condition is None or not ids:
        return True
    where, params = condition
    seen = session.execute(
        text(
            f"SELECT count(*) FROM {collection.base_from}"
            f" WHERE {collection.id_column} = ANY(:_ids) AND {where}"
        ),
        {**params, "_ids": ids},
    ).scalar()
    return seen == len(set(ids))


@dataclass(frozen=True)
class Change:
    """One write, as the audit log records it."""

    action: str  # "create" | "replace" | "update" | "delete" | "import"
    collection: str
    feature_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def record_write(session: Session, account: User | None, change: Change) -> None:
    """Adds the audit entry in the write's transaction (both commit or neither)."""
    audit.record(
        session,
        account,
        f"feature.{change.action}",
        change.collection,
        change.feature_id,
        change.before,
        change.after,
    )
