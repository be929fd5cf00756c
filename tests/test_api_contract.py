"""The API keeps its contract: schemathesis generates requests from GET /api/openapi (valid
and invalid ones, reads and writes) and runs all its checks on every answer — documented
status, content type and headers, body matching its schema, invalid input refused, valid
input accepted, 405 with `Allow` on undeclared methods, authentication enforced, no 5xx.

Run it alone: ./scripts/test tests/test_api_contract.py -q
CONTRACT_EXAMPLES=N raises the number of fuzzed cases per operation (default 3);
CONTRACT_OPERATIONS=text keeps only the operations whose "METHOD /path" contains the text;
CONTRACT_SHOW_KNOWN=1 lists the known failures (KNOWN_FAILURES) as failures too;
CONTRACT_SEED=N generates other cases (CI keeps the default, so it is reproducible).

Data: the two-street world of tests/world.py on this module's own connection (rolled back at
the end); each generated request runs in a savepoint rolled back after it, so a DELETE or a
deactivated account never leaks into the next case or into other tests. Requests are signed
with the world's admin token. Generation is derandomized (fixed seed) so CI is reproducible.

schemathesis' own pytest loader (`from_fixture`) does not run on pytest 9 (it rewrites the
private `Node._nodeid`), so this module drives the same per-operation Hypothesis tests itself:
one pytest test, every operation run, all failures listed together, and a summary printed.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok
from schemathesis.generation.modes import GenerationMode
from schemathesis.pytest.lazy import get_all_tests
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.conftest import bound_to
from tests.world import bearer

EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "3"))
ONLY = os.environ.get("CONTRACT_OPERATIONS", "")
SEED = int(os.environ.get("CONTRACT_SEED", "20261202"))
LAYERS = ("compounds", "grids", "markets", "roads")  # the built-in layers' collections
COLLECTIONS = (*LAYERS, "issues")

# --- what OpenAPI 3.0 cannot say, told to the generator ---------------------------------------
# The custom string format of `datetime` (geoservice.edge.params.parse_datetime): an RFC 3339
# instant or a day, or an interval start/end whose open ends are `..` or empty.
_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))])
_DAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
_MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30), timezones=_ZONES
)


def _interval(pair: tuple, shape: str) -> str:
    start, end = sorted(pair)
    return {"both": f"{start}/{end}", "from": f"{start}/..", "to": f"../{end}", "open": "/"}[shape]


_INTERVALS = st.one_of(
    _DAYS.map(date.isoformat),
    _MOMENTS.map(datetime.isoformat),
    st.builds(
        _interval,
        st.tuples(_DAYS, _DAYS),
        st.sampled_from(["both", "from", "to", "open"]),
    ),
    st.builds(
        _interval,
        st.tuples(_MOMENTS, _MOMENTS).map(lambda p: tuple(m.astimezone(UTC) for m in p)),
        st.sampled_from(["both", "from", "to"]),
    ).map(lambda text: text.replace(" ", "T")),
)
schemathesis.openapi.format("datetime-interval", _INTERVALS)
# `since`/`until` of the audit log: an ISO 8601 time or day.
schemathesis.openapi.format(
    "iso-instant", st.one_of(_DAYS.map(date.isoformat), _MOMENTS.map(datetime.isoformat))
)

# Rules between parameters, stated in their descriptions (a bbox's minimum before its
# maximum, longitudes before latitudes; a custom period needs from and to, the others only
# from, in their own notation): valid requests keep them.
_PERIOD_FROM = {"week": "2026-W47", "month": "2026-11", "quarter": "2026-Q4", "custom": None}


def _valid_bbox(values: list) -> list[float]:
    numbers = [float(v) for v in values]
    lons = sorted(max(-180.0, min(180.0, v)) for v in numbers[0::2][:2])
    lats = sorted(max(-90.0, min(90.0, v)) for v in numbers[1::2][:2])
    return [lons[0], lats[0], lons[1], lats[1]]


def keep_rules(case) -> None:
    """Makes a valid (positive) case keep the rules between parameters (every phase's cases
    pass here, the coverage phase's too, which schemathesis' map hooks do not see)."""
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return
    if case.query is None:
        case.query = {}
    query = case.query
    bbox = query.get("bbox")
    serialized = isinstance(bbox, str)  # the coverage phase sends it as text
    if serialized:
        bbox = bbox.split(",")
    if isinstance(bbox, list) and len(bbox) == 4:
        bbox = _valid_bbox(bbox)
        if case.path == "/map/heat" and "z" in query:  # at most one tile's width at its zoom
            west, south, east, north = bbox
            side = 170.0 / 2 ** int(query["z"])
            bbox = [west, south, min(east, west + side), min(north, south + side)]
        query["bbox"] = ",".join(str(v) for v in bbox) if serialized else bbox
    # A ranking row's key is a number for the groupings keyed by id (`of` decides).
    key = query.get("key")
    if case.path == "/rankings/issues" and key is not None and not re.fullmatch(r"\d{1,9}", key):
        query["key"] = "none"
    # A place is place_id, or layer with code (/responsible needs one; /assignments filters).
    place_needed = case.path == "/responsible" or (case.path == "/assignments" and "code" in query)
    if place_needed and "place_id" not in query:
        query.setdefault("layer", "grid")
        query.setdefault("code", "320999001001001")
    # A round ends on or after its first day.
    body = case.body if isinstance(case.body, dict) else {}
    if case.path == "/assessment/rounds" and {"starts_on", "ends_on"} <= body.keys():
        body["starts_on"], body["ends_on"] = sorted((body["starts_on"], body["ends_on"]))
    if "period" in query or "from" in query or "to" in query or "week" in query:
        kind = query.get("period") or "week"
        query.pop("week", None)
        query.pop("to", None)
        if kind == "custom":
            query["from"], query["to"] = "2026-11-01", "2026-11-08"
        elif "from" in query:
            query["from"] = _PERIOD_FROM[kind]


# Refusals of schema-valid requests that depend on the data or on what JSON Schema cannot
# state, each narrow: (operation pattern, status, the error's `field` prefix) → why.
DATA_REFUSALS: dict[tuple[str, int, str], str] = {
    (r"(PUT|PATCH|DELETE) /collections/\w+/items/\{featureId\}", 412, ""): (
        "If-Match names another version of the feature (server state, RFC 9110)"
    ),
    (r"POST /(collections/\w+|areas)/import", 415, "file"): (
        "the uploaded file's kind (its extension and content) is not one of the importers'"
    ),
    (r"POST /(collections/\w+|areas)/import", 422, "file"): "the file's content is unreadable",
    (r"POST /(collections/\w+|areas)/import", 400, "file"): "the file's content is unreadable",
    (r"POST /(collections/\w+|areas)/import", 400, "crs"): "a CRS text PROJ cannot read",
    (r"POST /(collections/\w+|areas)/import", 400, "encoding"): "a text encoding Python lacks",
    (r"POST /(collections/\w+|areas)/import", 400, "layer"): "no such layer in the file",
    (r"POST /roster/import", 400, "file"): "the upload is not an Excel workbook",
    (r"GET /attribution", 422, "geometry"): "the point lies outside the service area (data)",
    (r"GET /attribution", 400, "at"): "the report time not later than now (the clock)",
    (
        r"POST /assessment/(results/\{result_id\}/correction|rounds/\{round_id\}/results)",
        422,
        "photos",
    ): ("each photo's text is base64 (or a data: URL) of an image: content OpenAPI cannot state"),
    **{
        (
            r"POST /assessment/(results/\{result_id\}/correction|rounds/\{round_id\}/results)",
            status,
            "photos",
        ): why
        for status, why in (
            (415, "a photo that is no JPEG/PNG/HEIC image (content; seed 61)"),
            (413, "a photo with too many pixels (content)"),
        )
    },
    **{
        (r"GET /.*", 400, field): (
            "an issue category or source no vocabulary has known and no issue carries (data)"
        )
        for field in ("category", "source")
    },
    # Field work (issue 16): names and ids that must exist, and a sample that must find places.
    (r"POST /fieldwork/(schedules|inspections)", 422, "site_kind"): "no such site kind (data)",
    (r"POST /fieldwork/inspections", 422, "street"): "no such street (data)",
    (r"POST /fieldwork/inspections", 422, "inspector_id"): "no such inspector (data)",
    (r"POST /fieldwork/inspections", 422, "count"): "no place matches the rule (data)",
    (r"(POST|PATCH) /assessment/kinds(/\{kind_id\})?", 422, "attributes["): (
        "attribute definitions: names unique and not reserved, a choice needs non-blank choices"
    ),
    **{
        (r"(POST|PATCH) /notifications/channels(/\{channel_id\})?", 422, field): (
            "a channel kind's own settings and secrets (which keys, which are required)"
        )
        for field in ("config", "secret", "host", "webhook_url", "url", "body_template")
    },
    (r"(POST|PATCH) /notifications/channels(/\{channel_id\})?", 422, "unit_id"): (
        "no unit with that id (data)"
    ),
    **{
        (r"POST /collections/sites?(-\w+)?/items", 422, field): (
            "a site's kind must exist; its geometry, attributes and community follow the kind "
            "and the data"
        )
        for field in ("kind", "geometry", "attributes", "community_code")
    },
    (rf"(POST|PUT) /collections/({'|'.join(LAYERS)})/items(/\{{featureId\}})?", 400, "geometry"): (
        "a polygon's rings closed (first position repeated last): not expressible in OpenAPI 3.0"
    ),
    (rf"(POST|PUT) /collections/({'|'.join(LAYERS)})/items(/\{{featureId\}})?", 422, "geometry"): (
        "latitude within ±90, closed and valid rings, the place inside the service area (data): "
        "what OpenAPI 3.0 cannot say of a GeoJSON geometry"
    ),
    (
        rf"(POST|PUT) /collections/({'|'.join(LAYERS)})/items(/\{{featureId\}})?",
        422,
        "properties.community_code",
    ): ("no community with that code (data)"),
    (r"POST /collections/issues/items", 422, "photos"): (
        "at least REPORT_MIN_PHOTOS photos unless the source is exempt (a rule between fields), "
        "each a non-empty image (content)"
    ),
    (r"POST /collections/issues/items", 415, "photos"): "a photo that is no JPEG/PNG/HEIC image",
    (r"POST /collections/issues/items", 413, "photos"): "a photo with too many pixels (content)",
    (r"POST /collections/issues/items", 422, "geometry"): (
        "the point inside the service area (data); lon/lat or geometry, one of them"
    ),
    (r"POST /collections/issues/items", 422, "reported_at"): "not later than now (the clock)",
    # The field app's report is the issue report with an idempotency key: the same rules.
    (r"POST /fieldwork/reports", 422, "photos"): "photos: as the issue report (content)",
    (r"POST /fieldwork/reports", 415, "photos"): "a photo that is no JPEG/PNG/HEIC image",
    (r"POST /fieldwork/reports", 413, "photos"): "a photo with too many pixels (content)",
    (r"POST /fieldwork/reports", 422, "geometry"): "the point inside the service area (data)",
    (r"POST /fieldwork/reports", 422, "reported_at"): "not later than now (the clock)",
    (r"POST /users", 422, "password"): (
        "password strength (two kinds of characters, not holding the username) and no "
        "password for integration accounts: rules between fields"
    ),
    (r"POST /users", 422, "area"): "no area with that code (data)",
    (r"POST /issues/\{issue_id\}/attribution-correction", 422, "leader_id"): (
        "no leader with that id (data)"
    ),
    (r"PUT /notifications/preferences/\{leader_id\}", 422, "quiet_end"): (
        "quiet hours need both a start and an end (a rule between fields)"
    ),
    (r"PUT /notifications/callbacks/\{user_id\}", 422, "user"): (
        "a callback address is for integration accounts only (the account's role: data)"
    ),
    (r"POST /issues/\{issue_id\}/dispatch", 422, "leader_id"): (
        "no active leader with that id (data)"
    ),
    (r"POST /issues/\{issue_id\}/dispatch", 422, "note"): (
        "re-dispatching an issue that already has a leader needs a reason (the issue's state)"
    ),
    # Rules that hold (issue 17): ids that must exist, values whose shape depends on the key,
    # times that may not lie in the past, and only closed periods published.
    (r"POST /assignments/\{assignment_id\}/(end|reassign)", 400, "at"): (
        "the end after the record's own start (data; seed 79)"
    ),
    (r"POST /area-assignments", 422, "area_id"): "no community or street with that id (data)",
    (r"POST /area-assignments", 422, "leader_id"): "no active leader with that id (data)",
    (r"POST /area-assignments", 422, "valid_from"): "not in the future (the clock)",
    (r"POST /routing-rules", 422, "unit_id"): "no unit with that id (data)",
    (r"POST /routing-rules", 422, "area_id"): "no community or street with that id (data)",
    (r"POST /routing-rules", 422, "layer"): "no layer with that name (the registry)",
    (r"POST /routing-rules", 422, "valid_to"): "after valid_from (a rule between fields)",
    (r"POST /routing-rules", 422, "valid_from"): "not in the past (the clock)",
    (r"POST /rule-settings", 422, "value"): "the value's shape depends on the key",
    (r"POST /rule-settings", 422, "valid_from"): "not in the past (the clock)",
    (r"POST /rule-settings/categories", 422, "valid_from"): "not in the past (the clock)",
    (r"POST /rankings/publications", 422, "from"): "a closed period only (the clock)",
    (r"POST /rankings/publications", 422, "to"): "a custom period's end (rule between fields)",
    (r"POST /users", 422, "leader_id"): (
        "no leader with that id (data), or a leader account bound to neither leader nor area"
    ),
    (r"POST /intake/batches", 415, "file"): "the upload is not an .xlsx workbook",
    (r"POST /intake/batches", 422, "file"): "the workbook is unreadable or lacks the headers",
    (r"POST /assessment/sites/import", 415, "file"): "the upload is neither .xlsx nor GeoJSON",
    (r"POST /assessment/sites/import", 422, ""): "the list's rows (kinds, codes: data)",
    (r"(POST|PATCH) /assessment/sites(/\{site_id\})?", 422, "kind"): (
        "the kind must be an existing site kind still in use (data)"
    ),
    (r"(POST|PUT) /assessment/standards(/\{version_id\})?", 422, "items"): (
        "the tree holds at least one standard (anywhere in it)"
    ),
    (r"(POST|PUT) /assessment/standards(/\{version_id\})?", 422, "file"): (
        "each standard names existing site kinds and a configured issue category (data)"
    ),
}


# Text holding U+0000 anywhere in a request (geoservice.edge.text_input): PostgreSQL cannot
# store it, so it is a 400 for every operation — stated once in the document's description,
# since OpenAPI 3.0 could say it only by a pattern on every string.
_NUL_REFUSAL = "含有非法字符（NUL，\\u0000"


def _data_refusal(label: str, response) -> str | None:
    try:
        body = response.json()
    except Exception:
        return None
    error = body.get("error", "") if isinstance(body, dict) else ""
    if response.status_code == 400 and _NUL_REFUSAL in str(error):
        return "text holding NUL, which PostgreSQL cannot store"
    field = body.get("field") or "" if isinstance(body, dict) else ""
    for (pattern, status, prefix), why in DATA_REFUSALS.items():
        matches = response.status_code == status and re.fullmatch(pattern, label)
        if matches and field.startswith(prefix):
            return why
    return None


def empty_allowed(raw_schema: dict) -> dict[str, set[str]]:
    """Per "METHOD /path", the query parameters whose empty value means "not given"
    (`allowEmptyValue`)."""
    allowed: dict[str, set[str]] = {}
    for path, item in raw_schema.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            names = {
                p["name"]
                for p in [*item.get("parameters", []), *operation.get("parameters", [])]
                if p.get("in") == "query" and p.get("allowEmptyValue")
            }
            allowed[f"{method.upper()} {path}"] = names
    return allowed


def sent_empty_where_allowed(case, response, allowed: dict[str, set[str]]) -> bool:
    """A negative case whose invalid query value went out empty (`name=`): schemathesis
    serialises some invalid values (an object, null) that way, and an empty value is what the
    document allows for these parameters, so the request sent was valid after all (seeds 47
    and 83: `status=`, `period=`)."""
    if case.meta is None or case.meta.generation.mode != GenerationMode.NEGATIVE:
        return False
    names = allowed.get(f"{case.method} {case.path}", set())
    sent = parse_qsl(urlsplit(response.request.url).query, keep_blank_values=True)
    return any(value == "" and name in names for name, value in sent)


# Operations still failing a check, with the reason; the test fails when one of them passes
# (remove it here) or when any other operation fails.
KNOWN_FAILURES: dict[str, str] = {}

SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=True,
)


# pytest-timeout's 300 s (pyproject.toml) fired inside whichever operation ran at that moment
# at CONTRACT_EXAMPLES=25 on a slow host (~300 s), and Hypothesis, replaying the "failure",
# reported it as a flaky test: the whole run's budget grows with the examples.
@pytest.mark.timeout(max(300, 30 * EXAMPLES))
def test_the_api_keeps_its_documented_contract(app, world_connection, capsys):
    connection, world = world_connection
    headers = bearer(world["tokens"]["admin"])
    with bound_to(app, connection):
        schema = schemathesis.openapi.from_wsgi(
            "/api/openapi", app, headers=headers, config=SchemathesisConfig(seed=SEED)
        )
    allowed = empty_allowed(schema.raw_schema)
    statuses: Counter = Counter()
    calls: Counter = Counter()
    seconds: Counter = Counter()

    def run_case(case) -> None:
        label = f"{case.method} {case.path}"
        keep_rules(case)
        # bound_to rolls back to its savepoint, which stays open in PostgreSQL: released here,
        # or 10,000 requests nest 10,000 subtransactions whose locks fill the shared lock
        # table ("out of shared memory", a 500 for whatever runs next, in any test database).
        connection.exec_driver_sql("SAVEPOINT contract_case")
        try:
            with bound_to(app, connection):
                response = case.call(headers=headers)
                calls[label] += 1
                statuses[response.status_code] += 1
                excluded = [positive_data_acceptance] if _data_refusal(label, response) else []
                if sent_empty_where_allowed(case, response, allowed):
                    excluded.append(negative_data_rejection)
                case.validate_response(response, headers=headers, excluded_checks=excluded)
        finally:
            connection.exec_driver_sql("ROLLBACK TO SAVEPOINT contract_case")
            connection.exec_driver_sql("RELEASE SAVEPOINT contract_case")

    started = time.monotonic()
    failures: dict[str, str] = {}
    operations = 0
    for result in get_all_tests(
        schema=schema, test_func=run_case, settings=SETTINGS, given_kwargs=None
    ):
        if not isinstance(result, Ok):
            failures[str(result.err().label)] = f"invalid schema: {result.err()}"
            continue
        operation, test = result.ok()
        if ONLY and ONLY not in operation.label:
            continue
        operations += 1
        began = time.monotonic()
        try:
            test()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # every operation runs; the failures are listed together
            failures[operation.label] = f"{type(exc).__name__}: {exc}"
        seconds[operation.label] = time.monotonic() - began
    elapsed = time.monotonic() - started

    known = {} if os.environ.get("CONTRACT_SHOW_KNOWN") else KNOWN_FAILURES
    unexpected = {k: v for k, v in failures.items() if k not in known}
    fixed = sorted(k for k in KNOWN_FAILURES if k not in failures and (not ONLY or ONLY in k))
    summary = (
        f"schemathesis {schemathesis.__version__}: {sum(calls.values())} requests over "
        f"{operations} operations in {elapsed:.1f} s (max_examples={EXAMPLES}, seed={SEED}); "
        "statuses "
        + ", ".join(f"{s}×{n}" for s, n in sorted(statuses.items()))
        + f"; {len(failures)} operations failing ({len(failures) - len(unexpected)} known)"
        + "; slowest: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.most_common(3))
    )
    with capsys.disabled():  # shown in CI logs whether the test passes or fails
        print("\n" + summary)
    assert operations > 100 or ONLY, summary
    assert not unexpected, (
        summary
        + "\n\n"
        + "\n\n".join(f"### {label}\n{text}" for label, text in sorted(unexpected.items()))
    )
    assert not fixed, f"{summary}\nthese pass now, remove them from KNOWN_FAILURES: {fixed}"


# --- the fixes the run above found, one example each (fast; they fail on the old code) ------


def test_a_405_names_the_methods_the_url_serves(world, world_client):
    admin = bearer(world["tokens"]["admin"])
    response = world_client.put("/api/units", headers=admin)
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}
    issue = world["issues"]["I1"]
    response = world_client.put(f"/api/collections/issues/items/{issue}", headers=admin)
    assert response.status_code == 405, "the issues collection is read-only here"
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    response = world_client.options(f"/api/collections/issues/items/{issue}", headers=admin)
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    response = world_client.options("/api/areas/import", headers=admin)
    allowed = set(response.headers["Allow"].split(", "))
    assert allowed == {"OPTIONS", "POST"}, "not /areas/<code>'s GET"


@pytest.mark.parametrize(
    "url",
    [
        "/api/audit?user=%00",
        "/api/collections/roads/items?leader_id=0",
        "/api/collections/issues/items?severity=9",
        "/api/collections/roads/items?code=%20",
        "/api/collections/issues/items?status=open,nonsense",
        "/api/collections/roads/items?bbox=120,33,0,120.1,33.1,0",
        "/api/collections/roads/tiles?f=html",
        "/api/assignments?layer=AAA",
        "/api/audit?offset=",
        "/api/collections/sites/items?code=%20",
        "/api/collections/sites/items?leader_id=0",
        "/api/collections/sites/items?kind=,",
        "/api/assessment/trend?key=x",
        "/api/assessment/trend?of=",
        "/api/assessment/sites/1/qr?format=",
    ],
)
def test_parameters_the_document_excludes_are_refused(world, world_client, url):
    response = world_client.get(url, headers=bearer(world["tokens"]["admin"]))
    assert response.status_code == 400, (url, response.get_json())
    assert response.get_json()["field"]


def test_a_body_that_is_not_an_object_is_a_400_not_a_500(world, world_client):
    leader = world["leaders"]["L2"]
    response = world_client.post(
        f"/api/leaders/{leader}/deactivate",
        json=[None, None],
        headers=bearer(world["tokens"]["admin"]),
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "body", [{"name": "市容办", "is_lead": None}, {"name": "市容办", "is_lead": "yes"}]
)
def test_json_fields_keep_their_documented_types(world, world_client, body):
    response = world_client.post("/api/units", json=body, headers=bearer(world["tokens"]["admin"]))
    assert response.status_code == 400
    assert response.get_json()["field"] == "is_lead"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"username": "admin", "role": "viewer"}, 409, "username"),  # was 422 without field
        ({"username": "a b", "role": "viewer"}, 422, "username"),
        ({"username": "neu", "role": "viewer", "password": "short"}, 422, "password"),
        ({"username": "neu", "role": "viewer", "area": "000"}, 422, "area"),
        ({"username": "neu", "role": "viewer", "display_name": "名" * 101}, 422, "display_name"),
    ],
)
def test_an_account_refused_names_its_field(world, world_client, body, status, field):
    response = world_client.post("/api/users", json=body, headers=bearer(world["tokens"]["admin"]))
    assert response.status_code == status, response.get_json()
    assert response.get_json()["field"] == field
