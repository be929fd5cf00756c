"""Write generations and HTTP validators (geoservice/httpcache.py, edge/caching.py): a write
moves the generation exactly when it commits; an ETag validates only for callers who see the
same rows (never across areas or roles), never before the permission check, and never after a
write changed the answer; a stored answer is not served to another audience or after a write.

These tests need commits (the suite's usual shared transaction never commits), so they run on
a scratch database of their own."""

from __future__ import annotations

import dataclasses
import importlib
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text, update
from sqlalchemy.orm import Session

from geoservice import create_app, httpcache, migrate
from geoservice.accounts import accounts
from geoservice.accounts.accounts import create_user, issue_token
from tests.clock import hold_wall_clock
from tests.scratch import create_scratch_database, drop_scratch_database

EAST = (120.0, 33.6, 120.2, 33.8)
WEST = (120.2, 33.6, 120.4, 33.8)
ITEMS = "/api/collections/issues/items?limit=100"


def envelope(box) -> str:
    return f"ST_Multi(ST_MakeEnvelope({box[0]}, {box[1]}, {box[2]}, {box[3]}, 4326))"


@pytest.fixture(autouse=True)
def one_clock_window(monkeypatch) -> None:
    """Answers' ETags carry the current minute (edge/caching.py): each test here runs in the
    clock window of its start, so a minute turning between two of its requests does not read
    as a change (the tests that move the clock replace this `time` themselves)."""
    from geoservice.edge import caching

    hold_wall_clock(monkeypatch, caching)


@pytest.fixture(scope="module")
def world(engine) -> Iterator[dict]:
    name, url = create_scratch_database(engine, "httpcache")
    scratch = create_engine(url)
    try:
        with scratch.begin() as conn:
            conn.execute(text("CREATE EXTENSION postgis"))
        migrate.upgrade(scratch)
        with Session(scratch) as session:
            for code, box in (("320999001", EAST), ("320999002", WEST)):
                session.execute(
                    text(
                        "INSERT INTO admin_areas (level, code, name, geom)"
                        f" VALUES ('street', :c, :c, {envelope(box)})"
                    ),
                    {"c": code},
                )
            for lon in (120.1, 120.3):
                session.execute(
                    text(
                        "INSERT INTO issues (geom, category, source, status, reported_at)"
                        " VALUES (ST_SetSRID(ST_MakePoint(:x, 33.7), 4326), '环境卫生',"
                        " '12345热线', 'reported', now())"
                    ),
                    {"x": lon},
                )

            def token(username, role, area=None, scopes=None):
                user = create_user(session, username, role, area_code=area, check_strength=False)
                return {"Authorization": f"Bearer {issue_token(session, user, scopes=scopes)}"}

            accounts = {
                "east": token("east", "viewer", "320999001"),
                "east2": token("east2", "viewer", "320999001"),
                "west": token("west", "viewer", "320999002"),
                "admin": token("boss", "admin"),
                "citywide": token("citywide", "viewer"),
                "grids_only": token("gridder", "viewer", scopes=["layers.read:grids"]),
            }
            session.commit()
        app = create_app(
            {
                "DATABASE_URL": url.render_as_string(hide_password=False),
                "TESTING": True,
                "HTTP_VALIDATORS": True,
                "SECRET_KEY": "test-key",
                "RATE_LIMIT_WRITES_PER_MINUTE": 0,
            }
        )
        yield {"app": app, "client": app.test_client(), "engine": scratch, **accounts}
    finally:
        scratch.dispose()
        drop_scratch_database(engine, name)


def ids(response) -> list[int]:
    return sorted(f["id"] for f in response.get_json()["features"])


def report_at(engine, lon: float, lat: float, reported_at=None) -> int:
    """An issue written straight in SQL and committed (as a CLI job or psql would): its id."""
    with engine.begin() as conn:
        return conn.scalar(
            text(
                "INSERT INTO issues (geom, category, source, status, reported_at)"
                " VALUES (ST_SetSRID(ST_MakePoint(:x, :y), 4326), '环境卫生', '12345热线',"
                " 'reported', COALESCE(:at, now())) RETURNING id"
            ),
            {"x": lon, "y": lat, "at": reported_at},
        )


def gen(world, *subjects) -> int:
    with Session(world["engine"]) as session:
        return httpcache.generation(session, subjects)


def test_a_write_moves_the_generation_when_it_commits_and_only_then(world):
    before = gen(world, "issues")
    with world["engine"].connect() as conn:
        conn.execute(text("UPDATE issues SET description = 'x'"))
        conn.execute(text("UPDATE issues SET description = 'y'"))
        assert gen(world, "issues") == before  # not committed yet: nobody sees it
        conn.rollback()
    assert gen(world, "issues") == before
    with world["engine"].begin() as conn:
        conn.execute(text("UPDATE issues SET description = 'z'"))
        conn.execute(text("UPDATE units SET name = name"))
    assert gen(world, "issues") == before + 1  # one commit, one step, however many statements
    with Session(world["engine"]) as session:
        assert httpcache.generation(session, ["issues", "no_such_table"]) is None
        assert httpcache.generation(session, [httpcache.EVERYTHING]) >= before + 1
    with world["engine"].connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM data_touches")) == 0


def test_an_etag_validates_only_for_callers_who_see_the_same_rows(world):
    client = world["client"]
    east = client.get(ITEMS, headers=world["east"])
    etag = east.headers["ETag"]
    assert east.headers["Cache-Control"] == "private, no-cache"
    assert len(ids(east)) == 1
    again = client.get(ITEMS, headers={**world["east"], "If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    # Another account of the same area and role sees the same rows: the same answer.
    same = client.get(ITEMS, headers={**world["east2"], "If-None-Match": etag})
    assert same.status_code == 304
    # Another area, or the whole county, never revalidates with it: its own rows in full.
    west = client.get(ITEMS, headers={**world["west"], "If-None-Match": etag})
    assert west.status_code == 200 and west.headers["ETag"] != etag
    assert ids(west) != ids(east) and len(ids(west)) == 1
    admin = client.get(ITEMS, headers={**world["admin"], "If-None-Match": etag})
    assert admin.status_code == 200 and len(ids(admin)) == 2
    # The shared answer is not served across audiences either (second call, from the store).
    assert ids(client.get(ITEMS, headers=world["west"])) == ids(west)
    assert ids(client.get(ITEMS, headers=world["east"])) == ids(east)


def test_no_304_without_the_permission(world):
    client = world["client"]
    etag = client.get(ITEMS, headers=world["admin"]).headers["ETag"]
    refused = client.get(ITEMS, headers={**world["grids_only"], "If-None-Match": etag})
    assert refused.status_code == 403
    anonymous = client.get(ITEMS, headers={"If-None-Match": etag, "Accept": "application/json"})
    assert anonymous.status_code == 401


def test_a_write_invalidates_etags_and_stored_answers(world):
    client = world["client"]
    first = client.get(ITEMS, headers=world["east"])
    etag = first.headers["ETag"]
    report = {
        "lon": 120.15,
        "lat": 33.72,
        "category": "环境卫生",
        "source": "12345热线",
        "photos": [],
    }
    created = client.post("/api/collections/issues/items", json=report, headers=world["admin"])
    assert created.status_code == 201, created.get_json()
    after = client.get(ITEMS, headers={**world["east"], "If-None-Match": etag})
    assert after.status_code == 200 and after.headers["ETag"] != etag
    assert created.get_json()["id"] in ids(after)
    # A write straight in SQL (a CLI job, psql) is counted too.
    with world["engine"].begin() as conn:
        conn.execute(
            text("DELETE FROM issue_events WHERE issue_id = :i"), {"i": created.get_json()["id"]}
        )
        conn.execute(
            text("DELETE FROM photos WHERE issue_id = :i"), {"i": created.get_json()["id"]}
        )
        conn.execute(text("DELETE FROM issues WHERE id = :i"), {"i": created.get_json()["id"]})
    gone = client.get(ITEMS, headers={**world["east"], "If-None-Match": after.headers["ETag"]})
    assert gone.status_code == 200 and created.get_json()["id"] not in ids(gone)


def test_tiles_and_the_catalogue_revalidate(world):
    client = world["client"]
    for path in ("/api/collections", "/api/collections/issues/tiles/6/53/25.pbf"):
        first = client.get(path, headers=world["admin"])
        assert first.status_code == 200 and first.headers["ETag"]
        again = client.get(path, headers={**world["admin"], "If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304
        other = client.get(
            path, headers={**world["grids_only"], "If-None-Match": first.headers["ETag"]}
        )
        assert other.status_code in (200, 403)


def test_a_stored_answer_is_never_served_with_another_hosts_links(world):
    """Answers carry absolute links (self, next, items): one asked for under another host name
    (a forged Host header, or the site reached by IP and by name, http and https behind the
    proxy) must not be served to callers of this one."""
    client = world["client"]
    paths = ("/api/collections", "/api/collections/issues/items?limit=1")
    for path in paths:
        for _ in range(2):
            forged = client.get(path, headers=world["admin"], base_url="http://attacker.example")
            assert forged.status_code == 200 and "attacker.example" in forged.get_data(True)
    for path in paths:
        for base in ("http://localhost", "https://gis.example.gov.cn"):
            body = client.get(path, headers=world["admin"], base_url=base).get_data(True)
            assert "attacker.example" not in body and f"{base}/api/collections" in body, path
            etag = client.get(path, headers=world["admin"], base_url=base).headers["ETag"]
            other = client.get(
                path,
                headers={**world["admin"], "If-None-Match": etag},
                base_url="http://attacker.example",
            )
            assert other.status_code == 200  # not the 304 of another host's answer


def test_every_table_is_counted_except_the_listed_ones(engine):
    with engine.connect() as conn:
        untracked = set(
            conn.scalars(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
                    " AND NOT c.relispartition"
                    " AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid"
                    " AND t.tgname = 'data_touch')"
                )
            )
        )
        counted = set(conn.scalars(text("SELECT subject FROM data_generations")))
    untracked = {t for t in untracked if not t.startswith("procrastinate_")}
    assert untracked == set(migrate.UNTRACKED_TABLES)
    assert "issues" in counted and "places" in counted and "grids" in counted


def test_a_read_stamps_its_token_outside_the_request_transaction(world):
    """Reads roll back; the token's last use is kept anyway, written in its own transaction (a
    row lock held for the whole request made concurrent requests of one token queue)."""
    client, engine = world["client"], world["engine"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE api_tokens SET last_used_at = NULL"))
    # As a minute later: this process has not stamped nor remembered the token.
    accounts.forget_tokens()
    accounts._noted.clear()
    assert client.get(ITEMS, headers=world["west"]).status_code == 200
    with engine.connect() as conn:
        stamped = conn.scalar(
            text(
                "SELECT count(*) FROM api_tokens t JOIN users u ON u.id = t.user_id"
                " WHERE u.username = 'west' AND t.last_used_at IS NOT NULL"
            )
        )
    assert stamped == 1
    # Held by another transaction: the request neither waits for the row nor fails.
    with engine.connect() as other:
        other.execute(text("UPDATE api_tokens SET last_used_at = NULL"))
        accounts.forget_tokens()
        accounts._noted.clear()
        assert client.get(ITEMS, headers=world["east"]).status_code == 200
        other.rollback()


def test_rankings_are_one_answer_for_everyone_who_may_read_them(world):
    client = world["client"]
    url = "/api/rankings?of=leader&period=week"
    first = client.get(url, headers=world["east"])
    assert first.status_code == 200
    west = client.get(url, headers={**world["west"], "If-None-Match": first.headers["ETag"]})
    assert west.status_code == 304  # the same table for every account: no rows are scoped
    refused = client.get(
        url, headers={**world["grids_only"], "If-None-Match": first.headers["ETag"]}
    )
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("url", "computed"),
    [
        ("/api/rankings/trend?of=leader&period=week", "geoservice.ranking.ranking.trend"),
        ("/api/rankings/charts?period=week", "geoservice.ranking.cards.weekly_series"),
    ],
)
def test_trends_and_charts_are_one_stored_answer_for_everyone(world, monkeypatch, url, computed):
    """The rankings page's sparklines (eight periods of every row: ~14 s for the grids of a
    city) and charts are computed once and served to every account that may read rankings,
    until a write they depend on."""
    from geoservice.edge.caching import response_store

    module, name = computed.rsplit(".", 1)
    target = importlib.import_module(module)
    real, calls = getattr(target, name), []
    monkeypatch.setattr(target, name, lambda *a, **k: calls.append(1) or real(*a, **k))
    with world["app"].app_context():
        response_store(world["app"]).clear()
    client = world["client"]
    first = client.get(url, headers=world["east"])
    second = client.get(url, headers=world["west"])
    assert first.status_code == second.status_code == 200
    assert first.get_data() == second.get_data() and len(calls) == 1
    again = client.get(url, headers={**world["west"], "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    refused = client.get(url, headers=world["grids_only"])
    assert refused.status_code == 403


def test_a_value_is_kept_until_a_write_to_what_it_reads_is_committed(world):
    """httpcache.KeptByGeneration (a published 通报's check, 4–5 s for a city): computed once,
    each caller getting its own copy; an unrelated write leaves it, a committed write to what
    it reads renews it, and a transaction's own uncommitted write is never answered from it."""
    engine = world["engine"]
    kept, calls = httpcache.KeptByGeneration(), []

    def ask(session: Session) -> dict:
        def compute(_generation) -> dict:
            calls.append(1)
            return {"n": session.execute(text("SELECT count(*) FROM leaders")).scalar()}

        return kept.get(session, "leaders", ["leaders"], compute)

    def asked() -> dict:
        with Session(engine) as session:
            return ask(session)

    try:
        first = asked()
        n = first["n"]
        first["n"] = -1  # the caller's own copy: the kept value is not changed by it
        assert asked() == {"n": n} and len(calls) == 1
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO units (name) VALUES ('县文明办')"))
        assert asked() == {"n": n} and len(calls) == 1
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO leaders (name, level) VALUES ('新领导', '县级')"))
        assert asked() == {"n": n + 1} and len(calls) == 2
        with Session(engine) as session:
            session.execute(text("INSERT INTO leaders (name, level) VALUES ('未提交', '县级')"))
            assert ask(session) == {"n": n + 2} and len(calls) == 3
            session.rollback()
        assert asked() == {"n": n + 1} and len(calls) == 3
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM leaders WHERE name = '新领导'"))
            conn.execute(text("DELETE FROM units WHERE name = '县文明办'"))


def test_writes_are_counted_in_a_transaction_of_their_own(world, monkeypatch):
    """The write limit's counter is committed at once on its own connection (the request's
    transaction is neither committed early nor holding the counter's row): a refused write
    still counts, concurrent writes of one account do not queue on the counter, and the
    third write within the minute is refused."""
    app, client, engine = world["app"], world["client"], world["engine"]
    monkeypatch.setitem(app.config, "RATE_LIMIT_WRITES_PER_MINUTE", 2)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM rate_counters"))
    try:
        with engine.connect() as other:
            # Another transaction holds nothing of it: the counter row is free between writes.
            statuses = [
                client.post(ITEMS, json={}, headers=world["east"]).status_code for _ in range(3)
            ]
            assert statuses == [403, 403, 429]  # a viewer may not report; each try counts
            counted = other.scalar(text("SELECT sum(count) FROM rate_counters"))
            assert counted == 3
            # No request left a lock on it.
            locked = other.execute(text("SELECT key FROM rate_counters FOR UPDATE NOWAIT")).all()
            assert len(locked) == 1
            other.rollback()
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM rate_counters"))


def test_one_issue_is_read_without_a_transaction_and_within_scope(world):
    """GET /api/issues/<id> is an @autocommit_read view (no BEGIN/ROLLBACK): it answers as
    before (and would raise if anything on its path wrote)."""
    client, engine = world["client"], world["engine"]
    with engine.connect() as conn:
        east_id, west_id = conn.execute(
            text(
                "SELECT min(id) FILTER (WHERE ST_X(geom) < 120.2),"
                " min(id) FILTER (WHERE ST_X(geom) > 120.2) FROM issues"
            )
        ).one()
    admin = client.get(f"/api/issues/{east_id}", headers=world["admin"])
    assert admin.status_code == 200
    assert admin.get_json()["properties"]["id"] == east_id
    assert client.get(f"/api/issues/{east_id}", headers=world["east"]).status_code == 200
    assert client.get(f"/api/issues/{west_id}", headers=world["east"]).status_code == 404


class GatedRankings:
    """The real ranking computation behind a gate the test opens, counting its calls."""

    def __init__(self, monkeypatch):
        from geoservice.api import rankings as rankings_api

        self.real = rankings_api.ranking_payload
        self.entered, self.gate, self.calls = threading.Event(), threading.Event(), 0
        monkeypatch.setattr(rankings_api, "ranking_payload", self)

    def __call__(self, of, period):
        self.calls += 1
        self.entered.set()
        assert self.gate.wait(30)
        return self.real(of, period)

    def second_waits_for_the_first(self, ask_first, ask_second) -> None:
        """ask_first computes (held at the gate); ask_second, asked meanwhile, neither
        answers nor computes until the gate opens."""
        first = threading.Thread(target=ask_first)
        first.start()
        assert self.entered.wait(30)
        second = threading.Thread(target=ask_second)
        second.start()
        second.join(0.5)
        assert second.is_alive() and self.calls == 1
        self.gate.set()
        first.join(30)
        second.join(30)
        assert self.calls == 1


def same_answers(first, second) -> None:
    assert first.status_code == second.status_code == 200
    assert first.get_data() == second.get_data()
    assert first.headers["ETag"] == second.headers["ETag"]


def test_a_lagging_answer_is_computed_once_at_a_time(world, monkeypatch):
    """Rankings may lag writes by RANKINGS_FRESH_SECONDS. While one request recomputes them,
    another request of the same process does not start a second computation: without a
    previous answer it waits for that one; with a previous answer not older than twice the lag
    it gets that answer at once."""
    from geoservice.edge.caching import response_store

    app, engine = world["app"], world["engine"]
    monkeypatch.setitem(app.config, "RANKINGS_FRESH_SECONDS", 10)
    url = "/api/rankings?of=unit&period=month"
    gated = GatedRankings(monkeypatch)
    with app.app_context():
        response_store(app).clear()
    answers: dict[str, object] = {}

    def ask(name):
        return lambda: answers.__setitem__(name, app.test_client().get(url, headers=world["admin"]))

    gated.second_waits_for_the_first(ask("first"), ask("second"))
    same_answers(answers["first"], answers["second"])

    # A write, and the stored answer is past the lag (but not twice it): the next request
    # recomputes; a request meanwhile gets the previous answer without waiting.
    with engine.begin() as conn:
        conn.execute(text("UPDATE admin_areas SET name = name || '·' WHERE code = '320999001'"))
    with app.app_context():
        store = response_store(app)
        (key,) = [k for k in store._items if k[1] == "/api/rankings"]
        old = store.get(key)
        store.put(key, dataclasses.replace(old, made=old.made - 15))
    with engine.begin() as conn:  # and the copy the other worker processes would read
        conn.execute(text("UPDATE shared_answers SET made = made - interval '15 seconds'"))
    gated.entered.clear()
    gated.gate.clear()
    third = threading.Thread(target=ask("third"))
    third.start()
    assert gated.entered.wait(30)
    meanwhile = app.test_client().get(url, headers=world["admin"])
    assert meanwhile.status_code == 200
    assert meanwhile.headers["ETag"] == answers["first"].headers["ETag"]  # the previous one
    assert gated.calls == 2
    gated.gate.set()
    third.join(30)
    assert answers["third"].status_code == 200
    assert answers["third"].headers["ETag"] != answers["first"].headers["ETag"]
    assert gated.calls == 2


def test_a_lagging_answer_is_shared_by_the_worker_processes(world, monkeypatch):
    """Two apps on one database stand for two worker processes: while one is computing an
    answer, the other waits for that computation instead of starting its own, and serves what
    the first left in shared_answers."""
    engine = world["engine"]
    other = create_app({**world["app"].config, "RANKINGS_FRESH_SECONDS": 10})
    monkeypatch.setitem(world["app"].config, "RANKINGS_FRESH_SECONDS", 10)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM shared_answers"))
    gated = GatedRankings(monkeypatch)
    url = "/api/rankings?of=street&period=month"
    answers = {}

    def ask(app, name):
        return lambda: answers.__setitem__(name, app.test_client().get(url, headers=world["admin"]))

    try:
        gated.second_waits_for_the_first(ask(world["app"], "first"), ask(other, "second"))
        same_answers(answers["first"], answers["second"])
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM shared_answers")) == 1
    finally:
        other.extensions["geoservice.db"].engine.dispose()


def test_layer_extents_follow_committed_writes_of_their_own_table(world):
    """The catalogue keeps each layer's extent until that layer's table is written: a grid
    added (or moved) shows in the next answer's extent; a write to issues alone changes the
    catalogue (the issues' extent) but reuses the layers' extents."""

    def grids_bbox():
        body = world["client"].get("/api/collections", headers=world["admin"]).get_json()
        (grids,) = [c for c in body["collections"] if c["id"] == "grids"]
        return (grids.get("extent") or {}).get("spatial", {}).get("bbox", [None])[0]

    engine = world["engine"]
    with engine.begin() as conn:
        place = conn.scalar(
            text("INSERT INTO places (layer, code, name) VALUES ('grids', 'G-X', 'X') RETURNING id")
        )
        conn.execute(
            text(
                f"INSERT INTO grids (id, geom) VALUES (:id, {envelope((120.0, 33.6, 120.1, 33.7))})"
            ),
            {"id": place},
        )
    try:
        assert grids_bbox() == pytest.approx([120.0, 33.6, 120.1, 33.7])
        with engine.begin() as conn:
            conn.execute(
                text(
                    f"UPDATE grids SET geom = {envelope((120.0, 33.6, 120.3, 33.75))}"
                    " WHERE id = :id"
                ),
                {"id": place},
            )
        assert grids_bbox() == pytest.approx([120.0, 33.6, 120.3, 33.75])
        with engine.begin() as conn:
            conn.execute(text("UPDATE issues SET description = 'x'"))
        assert grids_bbox() == pytest.approx([120.0, 33.6, 120.3, 33.75])
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM places WHERE id = :id"), {"id": place})
    assert grids_bbox() is None


def test_issue_pages_and_tiles_of_an_area_outlive_reports_elsewhere(world):
    """An items page of issues in a bbox, and an issue tile, stay valid (304, the same stored
    answer) after a report 20 km away, and not after a report inside them."""
    from tests.test_api_tiles import tile_of

    client, engine, admin = world["client"], world["engine"], world["admin"]
    page = "/api/collections/issues/items?limit=10&bbox=120.05,33.65,120.15,33.75"
    x, y = tile_of(120.1, 33.7, 14)
    tile = f"/api/collections/issues/tiles/14/{x}/{y}.pbf"

    def report(lon):
        return report_at(engine, lon, 33.7001)

    first = {path: client.get(path, headers=admin) for path in (page, tile)}
    assert all(r.status_code == 200 for r in first.values())
    added = [report(120.3)]  # in WEST, 20 km east of the page's bbox
    try:
        for path, answer in first.items():
            etag = answer.headers["ETag"]
            again = client.get(path, headers={**admin, "If-None-Match": etag})
            assert again.status_code == 304, path
        added.append(report(120.1001))  # inside both
        for path, answer in first.items():
            etag = answer.headers["ETag"]
            again = client.get(path, headers={**admin, "If-None-Match": etag})
            assert again.status_code == 200 and again.headers["ETag"] != etag, path
        ids = [f["id"] for f in client.get(page, headers=admin).get_json()["features"]]
        assert added[-1] in ids and added[0] not in ids
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM issues WHERE id = ANY(:ids)"), {"ids": added})


def test_the_catalogue_outlives_reports_inside_the_issues_extent(world):
    """The catalogue shows only the issues' extent (and when the first was reported, open-ended:
    issues keep coming): a report inside it leaves the catalogue valid (304), one outside it
    grows the extent and changes the catalogue."""
    client, engine, admin = world["client"], world["engine"], world["admin"]

    def report(lon, lat):
        return report_at(engine, lon, lat)

    def issues_extent(answer):
        (issues,) = [c for c in answer.get_json()["collections"] if c["id"] == "issues"]
        return issues["extent"]

    first = client.get("/api/collections", headers=admin)
    extent = issues_extent(first)
    west, south, east, north = extent["spatial"]["bbox"][0]
    assert west <= 120.1 and east >= 120.3 and south <= 33.7 <= north
    start, end = extent["temporal"]["interval"][0]
    assert start is not None and end is None
    added = [report(120.2, 33.7)]  # between the two first issues
    try:
        again = client.get(
            "/api/collections", headers={**admin, "If-None-Match": first.headers["ETag"]}
        )
        assert again.status_code == 304
        added.append(report(120.5, 33.9))  # outside: the extent grows
        grown = client.get(
            "/api/collections", headers={**admin, "If-None-Match": first.headers["ETag"]}
        )
        assert grown.status_code == 200
        bbox = issues_extent(grown)["spatial"]["bbox"][0]
        assert bbox[2] >= 120.5 and bbox[3] >= 33.9
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM issues WHERE id = ANY(:ids)"), {"ids": added})


def test_a_full_page_keeps_its_features_through_reports_in_its_area(world, monkeypatch):
    """A report in a page's bbox gets a higher id than every feature of a full page: the page
    is answered with the same features and the new numberMatched, without being built again
    (edge/caching.py, kept_page). A write touching one of its issues, or a page that is not
    full, builds it again."""
    import geoservice.api.features as features

    client, engine, admin = world["client"], world["engine"], world["admin"]
    bbox = "120.02,33.62,120.08,33.68"
    page = f"/api/collections/issues/items?limit=2&bbox={bbox}"
    whole = f"/api/collections/issues/items?limit=100&bbox={bbox}"
    built = []
    real = features.items_page
    monkeypatch.setattr(features, "items_page", lambda *a, **k: built.append(1) or real(*a, **k))

    def report(lon):
        return report_at(engine, lon, 33.65)

    added = [report(120.03), report(120.05), report(120.07)]
    try:
        first = client.get(page, headers=admin).get_json()
        assert [f["id"] for f in first["features"]] == added[:2]
        assert first["numberMatched"] == 3 and len(built) == 1
        assert any(link["rel"] == "next" for link in first["links"])
        # Another account that sees the same rows (a city-wide viewer) shares the page.
        shared = client.get(page, headers=world["citywide"]).get_json()
        assert shared["features"] == first["features"] and len(built) == 1
        added.append(report(120.04))  # inside, a higher id than the page's last
        second = client.get(page, headers=admin).get_json()
        assert second["features"] == first["features"] and second["numberMatched"] == 4
        assert len(built) == 1  # counted again, not built again
        # Not full: the new report belongs on it.
        assert [f["id"] for f in client.get(whole, headers=admin).get_json()["features"]] == added
        with engine.begin() as conn:  # a write to an issue of the page
            conn.execute(
                text("UPDATE issues SET status = 'accepted' WHERE id = :i"), {"i": added[0]}
            )
        third = client.get(page, headers=admin).get_json()
        assert third["features"][0]["properties"]["status"] == "accepted"
        assert len(built) == 3
        with engine.begin() as conn:  # past the page: only numberMatched and `next` change
            conn.execute(text("DELETE FROM issues WHERE id = ANY(:ids)"), {"ids": added[2:]})
        fourth = client.get(page, headers=admin).get_json()
        assert fourth["features"] == third["features"] and fourth["numberMatched"] == 2
        assert not any(link["rel"] == "next" for link in fourth["links"]) and len(built) == 3
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM issues WHERE id = ANY(:ids)"), {"ids": added})


def test_a_kept_page_outlives_the_clock_window_until_one_of_its_issues_turns_overdue(
    world, monkeypatch
):
    """A kept page's only property that moves with the clock is `overdue`: it is served again
    in later clock windows (no build) until the deadline of one of its open issues passes,
    then built again with that issue overdue."""
    import time as real_time

    import geoservice.api.features as features
    import geoservice.edge.caching as caching

    client, engine, admin = world["client"], world["engine"], world["admin"]
    page = "/api/collections/issues/items?limit=2&bbox=120.02,33.62,120.08,33.68"
    built = []
    real = features.items_page
    monkeypatch.setattr(features, "items_page", lambda *a, **k: built.append(1) or real(*a, **k))
    added = [report_at(engine, lon, 33.65) for lon in (120.03, 120.05, 120.07)]
    with engine.begin() as conn:  # deadlines in the database's clock: far, then soon
        conn.execute(
            text("UPDATE issues SET deadline = now() + interval '3 days' WHERE id = ANY(:i)"),
            {"i": added},
        )
        conn.execute(
            text("UPDATE issues SET deadline = clock_timestamp() + interval '2 seconds'"
                 " WHERE id = :i"),
            {"i": added[1]},
        )  # fmt: skip

    class Later:
        """time.time() `ahead` seconds later (other clock windows of 60 s: an answer stored
        in one is not served in another); the rest of `time` as it is."""

        def __init__(self, ahead: float) -> None:
            self.ahead = ahead

        def __getattr__(self, name):
            return getattr(real_time, name)

        def time(self):
            return real_time.time() + self.ahead

    try:
        first = client.get(page, headers=admin).get_json()
        assert [f["properties"]["overdue"] for f in first["features"]] == [False, False]
        assert len(built) == 1
        monkeypatch.setattr(caching, "time", Later(120))
        again = client.get(page, headers=admin).get_json()
        assert again["features"] == first["features"] and len(built) == 1
        real_time.sleep(2.5)  # the second issue's deadline passes
        monkeypatch.setattr(caching, "time", Later(240))
        late = client.get(page, headers=admin).get_json()
        assert len(built) == 2
        assert [f["properties"]["overdue"] for f in late["features"]] == [False, True]
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM issues WHERE id = ANY(:ids)"), {"ids": added})


def test_a_closed_weeks_ranking_outlives_reports_after_it(world, monkeypatch):
    """The last complete week's ranking is a function of what happened before its end: a
    report now leaves its answer current (304), an event dated inside the week (a correction)
    does not; the current week's ranking changes with the report."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    client, engine, admin = world["client"], world["engine"], world["admin"]
    monkeypatch.setitem(world["app"].config, "RANKINGS_FRESH_SECONDS", 0)
    closed = "/api/rankings?of=leader&period=week"
    now = datetime.now(UTC)  # the app's clock: TEST_CLOCK_SHIFT moves it, not the scratch db's
    today = now.astimezone(ZoneInfo(world["app"].config["TIMEZONE"])).date().isoformat()
    current = f"/api/rankings?of=leader&period=week&from={today}"

    def insert(sql, **params):
        with engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return result.scalar() if result.returns_rows else None

    first = {url: client.get(url, headers=admin) for url in (closed, current)}
    assert all(r.status_code == 200 for r in first.values())
    added = report_at(engine, 120.11, 33.71, now)
    try:
        insert(
            "INSERT INTO issue_events (issue_id, at, to_status) VALUES (:i, :now, 'reported')",
            i=added,
            now=now,
        )

        def again(url):
            return client.get(url, headers={**admin, "If-None-Match": first[url].headers["ETag"]})

        assert again(closed).status_code == 304
        assert again(current).status_code == 200
        # A correction dated inside the closed week.
        insert(
            "INSERT INTO issue_events (issue_id, at, to_status) VALUES (:i, :at, 'accepted')",
            i=added,
            at=now - timedelta(days=8),
        )
        assert again(closed).status_code == 200
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM issue_events WHERE issue_id = :i"), {"i": added})
            conn.execute(text("DELETE FROM issues WHERE id = :i"), {"i": added})


def test_the_rankings_page_computes_a_closed_weeks_ranking_once(world, monkeypatch):
    """The page embeds the same ranking for every reader: a closed week's is computed once per
    process until a write dated before its end is committed; an open week's every view (its
    overdue figures move with the clock)."""
    from datetime import UTC, datetime, timedelta

    from geoservice.web import rankings as page

    real, calls = page.ranking_payload, []
    monkeypatch.setattr(page, "ranking_payload", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(page, "_KEPT", httpcache.KeptByGeneration())
    client, engine = world["client"], world["engine"]
    closed = "/rankings?of=street&period=week&from=2015-W47"
    first = client.get(closed, headers=world["east"])
    second = client.get(closed, headers=world["west"])
    assert first.status_code == second.status_code == 200 and len(calls) == 1
    report_at(engine, 120.1, 33.7)  # reported now, after the week: the week is unchanged
    assert client.get(closed, headers=world["east"]).status_code == 200 and len(calls) == 1
    report_at(engine, 120.1, 33.7, datetime(2015, 11, 17, 2, tzinfo=UTC))  # within it
    assert client.get(closed, headers=world["east"]).status_code == 200 and len(calls) == 2

    year, week, _ = (datetime.now(UTC) + timedelta(hours=8)).isocalendar()
    current = f"/rankings?of=street&period=week&from={year}-W{week:02d}"
    for _ in range(2):
        assert client.get(current, headers=world["east"]).status_code == 200
    assert len(calls) == 4


def test_a_revocation_or_deactivation_committed_elsewhere_stops_cached_reads_at_once(world):
    """Another worker process still holds the token's lookup (put back here after the
    change): the accounts' write counter has moved, so the next read is refused at once."""
    from geoservice.models import User

    client = world["client"]
    for change in ("revoke", "deactivate"):
        with Session(world["engine"]) as session:
            user = create_user(session, f"cached_{change}", "viewer", check_strength=False)
            token = issue_token(session, user, label="cached")
            session.commit()
            user_id = user.id
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/me", headers=headers).status_code == 200
        held_elsewhere = dict(accounts._token_cache)
        with Session(world["engine"]) as session:
            user = session.get(User, user_id)
            if change == "revoke":
                accounts.revoke_tokens(session, user, label="cached")
            else:
                session.execute(update(User).where(User.id == user_id).values(active=False))
            session.commit()
        accounts._token_cache.update(held_elsewhere)
        assert client.get("/api/me", headers=headers).status_code == 401, change
