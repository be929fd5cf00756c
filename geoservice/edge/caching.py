"""HTTP validators and shared answers for read views (issue 19), over geoservice.httpcache.

    @bp.get("/collections/<collection_id>/items")
    @collection_read                                   # permissions first: no 304 without them
    @validated(lambda collection_id: collection_subjects(collection_or_404(collection_id)),
               store=True)
    def items(collection_id): ...

`validated(subjects)` reads the write generation of `subjects` (tables; EVERYTHING), then:
- the key of the answer is the URL (path and every query argument), the Accept header and the
  caller's *audience*: role, token scopes and data scope (area, leader, own reports) — the
  inputs that decide which rows and fields an answer holds. Two callers with the same audience
  get the same answer, so they may share it; callers whose rows differ never share a key, so an
  ETag obtained by one account never validates for an account that sees other rows;
- If-None-Match naming the current ETag → 304 (no body, nothing computed);
- `store=True`: the answer is kept per process (geoservice.httpcache.ResponseStore) and served
  to the next caller with the same key while the generation is unchanged (or, with
  `fresh_setting`, while younger than that many seconds: rankings may lag writes a little).
  Such a lagging answer is computed by one request of the process at a time: requests that
  find it stale while it is being recomputed get the previous answer (at most twice the
  allowed lag old) or, without one, wait for the computation instead of starting their own;
- answers that depend on the clock (overdue flags, "this week") are kept with the minute they
  were made in, and their ETag names it (`clock_seconds`), so none outlives the time that
  changed it by more than that (or than the allowed lag);
- 200 answers get `ETag` and, unless the view set one, `Cache-Control: private, no-cache`
  (browsers revalidate every time, cheaply). HTML answers are never stored (CSRF tokens).
Views that write, or whose answer depends on the account itself (allowed transitions, "mine"),
are not validated. `HTTP_VALIDATORS = False` turns all of it off (unset: on, except under TESTING).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import Response, current_app, g, make_response, request

from geoservice import httpcache
from geoservice.accounts import scope
from geoservice.accounts.auth import current_account, current_token
from geoservice.catalogue.catalogue import ISSUES, Collection
from geoservice.catalogue.items import ItemsQuery, Page, counted_from_tiles, page_count
from geoservice.catalogue.tiles import ISSUE_EXTENT_SQL
from geoservice.db import database, get_session
from geoservice.edge.access import catalogue
from geoservice.edge.params import parse_bbox
from geoservice.errors import ApiError
from geoservice.models import User

STORE = "geoservice.response_store"  # app.extensions key
PAGE_BODIES = "geoservice.page_bodies"  # app.extensions key: the pages kept_page reuses
# Tables every place and issue answer may read: the places, who answers for them, and the
# areas a scope is cut by.
REFERENCE_TABLES = ("places", "admin_areas", "assignments", "leaders", "units")
_TABLE = re.compile(r"\b(?:FROM|JOIN)\s+([a-z_][a-z0-9_]*)", re.IGNORECASE)
# How long a request waits for the same answer another request of its process is computing
# before it computes it itself.
COMPUTE_WAIT_SECONDS = 30.0
_KEPT_HEADERS = ("Content-Type", "Content-Crs", "Link", "Cache-Control", "Content-Disposition")


_SUBJECTS: dict[tuple[str, ...], tuple[str, ...]] = {}


def collection_subjects(collection: Collection) -> tuple[str, ...]:
    """The tables a collection's items and tiles read (worked out once per collection SQL)."""
    parts = (
        collection.id,
        collection.spec.table if collection.spec is not None else "",
        collection.base_from,
        collection.outer_joins,
        collection.tile_joins,
        collection.select_columns,
    )
    known = _SUBJECTS.get(parts)
    if known is None:
        tables = {t.lower() for t in _TABLE.findall(" ".join(parts[2:]))} - {"lateral", "select"}
        tables.update(REFERENCE_TABLES)
        if collection.id == ISSUES:
            tables.add("issues")
        if parts[1]:
            tables.add(parts[1])
        known = _SUBJECTS[parts] = tuple(sorted(tables))
    return known


def read_subjects(collection_id: str) -> tuple[str | httpcache.IssueArea, ...]:
    """The tables behind a collection's items (an unknown collection: a table that is never
    tracked, so the view answers its 404 uncached). A page of issues in a bbox reads the
    issues of that area only (httpcache.IssueArea) instead of the whole table: reports
    elsewhere in the city leave it current."""
    collection = catalogue().get(collection_id)
    if collection is None:
        return ("-unknown-",)
    tables = collection_subjects(collection)
    if collection.id != ISSUES or len(request.args.getlist("bbox")) != 1:
        return tables
    try:
        bbox = parse_bbox(request.args["bbox"])
    except ApiError:
        return tables  # the view answers the 400
    return (*(t for t in tables if t != "issues"), httpcache.IssueArea(bbox))


@dataclass(frozen=True)
class Answer:
    """What `validated` found out about the answer being computed (flask.g.answer)."""

    key: tuple
    window: int | None
    generation: httpcache.Generation


def page_bodies(app: Any = None) -> httpcache.ResponseStore:
    app = app or current_app
    store = app.extensions.get(PAGE_BODIES)
    if store is None:
        size = int(app.config.get("RESPONSE_STORE_BYTES", 64 << 20)) // 4
        store = app.extensions.setdefault(PAGE_BODIES, httpcache.ResponseStore(size))
    return store


def page_area(collection: Collection, query: ItemsQuery) -> httpcache.IssueArea | None:
    """The area of an items page of issues whose features can outlive reports in it (a bbox,
    numberMatched summed from the tile counts), where answers are validated; else None."""
    answer = g.get("answer")
    if answer is None or collection.id != ISSUES or query.bbox is None:
        return None
    if not isinstance(answer.generation, tuple) or not counted_from_tiles(collection, query):
        return None
    return httpcache.IssueArea(query.bbox)


def kept_page(session: Any, collection: Collection, query: ItemsQuery) -> Page | None:
    """The page built earlier for this answer's key, if none of the writes in its area since
    touched an issue up to its last feature (later reports have higher ids: they change only
    numberMatched, counted again here) and no open issue of it has become overdue since (the
    only property that moves with the clock), else None. Only full pages (a page that is not
    full would take in a new report) with an exact numberMatched."""
    kept = page_bodies().get(_page_key(collection, query))
    if kept is None:
        return None
    facts = dict(kept.headers)
    last_id, returned = int(facts["last_id"]), int(facts["number_returned"])
    tables = [s for s in read_subjects(collection.id) if isinstance(s, str)]
    now = httpcache.generation(session, (*tables, httpcache.IssueArea(query.bbox, last_id)))
    if now != kept.generation:
        return None
    matched = page_count(session, collection, query, until=facts["overdue_turns"] or None)
    if matched is None:
        return None
    more = matched > query.offset + returned
    return Page(kept.body, returned, matched, more, last_id, None)


def _page_key(collection: Collection, query: ItemsQuery) -> tuple:
    """What a page's features are a function of (with the generation and the clock): its
    statement's inputs. Accounts that see the same rows (an admin and a city-wide planner)
    share the page; the answer around it (links, format) is made per request."""
    scope = None if query.scope is None else (query.scope[0], sorted(query.scope[1].items()))
    return (
        collection.id,
        query.limit,
        query.offset,
        query.bbox,
        query.interval,
        repr(sorted(query.filters.items())),
        repr(scope),
    )


def keep_page(page: Page, collection: Collection, query: ItemsQuery) -> None:
    """Keeps a full page built with its area's generation (items_page(area=…)) for kept_page."""
    answer: Answer = g.answer
    if page.number_returned != query.limit or page.number_matched is None:
        return
    if page.last_id is None or page.changes_below is None:
        return
    tables_sum = answer.generation[0]
    page_bodies().put(
        _page_key(collection, query),
        httpcache.Stored(
            "", (tables_sum, (page.changes_below,)), page.body, "",
            (
                ("number_returned", str(page.number_returned)),
                ("last_id", str(page.last_id)),
                ("overdue_turns", page.overdue_turns or ""),
            ),
            time.monotonic(), answer.window,
        ),
    )  # fmt: skip


def catalogue_subjects(
    collections: Iterable[Collection],
) -> tuple[str | httpcache.Derived, ...]:
    """The tables behind the catalogue (every collection's extent) and the site kinds; of the
    issues, only their extent (a report inside it leaves the catalogue as it was)."""
    tables = {"site_kinds"}
    for collection in collections:
        tables.update(collection_subjects(collection))
    if "issues" not in tables:
        return tuple(sorted(tables))
    tables.discard("issues")
    return (*sorted(tables), httpcache.Derived(ISSUE_EXTENT_SQL))


def audience(account: User | None) -> tuple[Any, ...]:
    """What decides which rows and fields an answer holds for `account`."""
    if account is None:
        return ("anonymous",)
    seen = scope.for_account(account)
    token = current_token()
    scopes = None if token is None or token.scopes is None else tuple(sorted(token.scopes))
    return (
        account.role,
        token is not None,
        scopes,
        seen.everything,
        seen.area_id,
        seen.leader_id,
        seen.own_reports_of,
    )


def response_store(app: Any = None) -> httpcache.ResponseStore:
    app = app or current_app
    store = app.extensions.get(STORE)
    if store is None:
        store = app.extensions.setdefault(
            STORE, httpcache.ResponseStore(int(app.config.get("RESPONSE_STORE_BYTES", 64 << 20)))
        )
    return store


def enabled() -> bool:
    """HTTP_VALIDATORS, or (unset) on unless TESTING."""
    setting = current_app.config.get("HTTP_VALIDATORS")
    return bool(setting) if setting is not None else not current_app.config.get("TESTING")


def _not_modified(etag: str, cache_control: str) -> Response:
    response = Response(status=304)
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = cache_control
    return response


def _kept_answer(kept: httpcache.Stored, condition: str | None, cache_control: str) -> Response:
    if httpcache.matches(condition, kept.etag):
        return _not_modified(kept.etag, cache_control)
    response = Response(kept.body, mimetype=kept.mimetype)
    for name, value in kept.headers:
        response.headers[name] = value
    response.headers["ETag"] = kept.etag
    return response


def _computed(
    answer: Any, etag: str, current: httpcache.Generation, window: int | None, cache_control: str
) -> tuple[Response, httpcache.Stored | None]:
    """The view's answer with its validators, and what may be kept of it (None: not a plain
    200 answer, HTML or one setting a cookie)."""
    response = make_response(answer)
    if response.status_code != 200 or response.is_streamed:
        return response, None
    if (response.mimetype or "").startswith("text/html"):
        return response, None
    response.headers["ETag"] = etag
    response.headers.setdefault("Cache-Control", cache_control)
    if "Set-Cookie" in response.headers:
        return response, None
    kept_headers = tuple(
        (name, response.headers[name]) for name in _KEPT_HEADERS if name in response.headers
    )
    made = httpcache.Stored(
        etag, current, response.get_data(), response.mimetype or "", kept_headers,
        time.monotonic(), window,
    )  # fmt: skip
    return response, made


def _lagging_answer(
    compute: Callable[[], Any],
    shared: httpcache.ResponseStore,
    key: tuple,
    kept: httpcache.Stored | None,
    current: httpcache.Generation,
    window: int | None,
    etag: str,
    condition: str | None,
    cache_control: str,
    fresh: float,
) -> Response:
    """An answer allowed to lag writes by `fresh` seconds (rankings), computed once at a time
    per deployment: within the process, one request computes while the others get the last
    answer (at most twice the lag old) or wait for it; across processes, the one computing
    leaves its answer in `shared_answers` for the others, and one that finds another process
    computing does the same (httpcache.SharedAnswers)."""

    def recent(item: httpcache.Stored | None) -> bool:
        return item is not None and time.monotonic() - item.made < 2 * fresh

    if not shared.claim(key):
        if recent(kept):
            return _kept_answer(kept, condition, cache_control)
        shared.wait(key, timeout=COMPUTE_WAIT_SECONDS)
        made = shared.get(key)
        if made is not None and made is not kept:
            return _kept_answer(made, condition, cache_control)
        response, _ = _computed(compute(), etag, current, window, cache_control)
        return response
    try:
        with httpcache.SharedAnswers(database().engine, key) as others:
            found = others.fetch(current)
            if not httpcache.usable(found, current, fresh, window) and not others.lock():
                # Another process is computing it.
                if recent(kept):
                    return _kept_answer(kept, condition, cache_control)
                if not recent(found):
                    others.wait_for_lock(COMPUTE_WAIT_SECONDS)
                    found = others.fetch(current)
            if found is not None and (
                httpcache.usable(found, current, fresh, window)
                or (not others.locked and recent(found))
            ):
                found = others.with_body(found)
                if found is not None:
                    shared.put(key, found)
                    return _kept_answer(found, condition, cache_control)
            response, made = _computed(compute(), etag, current, window, cache_control)
            if made is not None:
                shared.put(key, made)
                others.put(made)
            return response
    finally:
        shared.release(key)


def validated(
    subjects: Iterable[str] | Callable[..., Iterable[str]],
    store: bool = False,
    fresh_setting: str | None = None,
    cache_control: str = "private, no-cache",
    clock_seconds: float = 60,
    per_audience: bool = True,
) -> Callable:
    """See the module doc. `subjects`: table names, or a function of the view's arguments.
    `clock_seconds`: answers that depend on the time too (overdue flags, "this week") are keyed
    by the current window of that many seconds, so none is served longer than that after the
    clock changed it (0: the answer does not depend on the time). `per_audience=False`: the
    answer is the same for everyone the view lets in (the rankings: every account allowed to
    read them sees the whole table), so all of them share it."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if request.method not in ("GET", "HEAD") or not enabled():
                return view(*args, **kwargs)
            wanted = subjects(*args, **kwargs) if callable(subjects) else subjects
            current = httpcache.generation(get_session(), wanted)  # before any data is read
            if current is None:
                return view(*args, **kwargs)
            key = (
                # Links in the answer are absolute: scheme and host as this caller reached us.
                request.root_url,
                request.path,
                tuple(sorted(request.args.items(multi=True))),
                request.headers.get("Accept", ""),
                audience(current_account()) if per_audience else "everyone allowed",
            )
            window = int(time.time() // clock_seconds) if clock_seconds else None
            g.answer = Answer(key, window, current)
            condition = request.headers.get("If-None-Match")
            shared = response_store() if store else None
            fresh = float(current_app.config.get(fresh_setting, 0)) if fresh_setting else 0.0
            kept = shared.get(key) if shared is not None else None
            if httpcache.usable(kept, current, fresh, window):
                return _kept_answer(kept, condition, cache_control)
            etag = httpcache.entity_tag(current, (*key, window))
            if httpcache.matches(condition, etag):
                return _not_modified(etag, cache_control)
            if shared is not None and fresh:
                return _lagging_answer(
                    lambda: view(*args, **kwargs), shared, key, kept, current, window, etag,
                    condition, cache_control, fresh,
                )  # fmt: skip
            response, made = _computed(view(*args, **kwargs), etag, current, window, cache_control)
            if made is not None and shared is not None:
                shared.put(key, made)
            return response

        return wrapper

    return decorator
