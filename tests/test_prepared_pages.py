"""Items pages of issues in a bbox run as a prepared statement with a generic plan, made once
per connection (catalogue/items.py, `_fetch_prepared`): the rows must be those of the moment,
whichever way (walk in id order or bitmap of the bbox) the page reads them."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from geoservice.catalogue import items
from geoservice.catalogue.items import ItemsQuery, generic_page
from geoservice.edge.access import catalogue
from geoservice.vocab import OPEN_STATUSES
from tests.api_support import auth, insert_issue

BBOX = (120.20, 33.70, 120.26, 33.75)


@pytest.fixture
def viewer(db_session):
    return auth(db_session, "viewer")


def fill(db_session, n=300, seed=5):
    rng = random.Random(seed)
    statuses = ["reported", "closed", "dispatched"]
    for k in range(n):
        lon, lat = rng.uniform(120.19, 120.27), rng.uniform(33.69, 33.76)
        insert_issue(db_session, lon, lat, status=statuses[k % 3])


def expected_ids(db_session, bbox, limit, statuses=None):
    return list(
        db_session.execute(
            text(
                "SELECT id FROM issues WHERE ST_X(geom) BETWEEN :a AND :c"
                " AND ST_Y(geom) BETWEEN :b AND :d"
                " AND (CAST(:s AS text[]) IS NULL OR status = ANY(CAST(:s AS text[])))"
                " ORDER BY id LIMIT :n"
            ),
            {"a": bbox[0], "b": bbox[1], "c": bbox[2], "d": bbox[3], "s": statuses, "n": limit},
        ).scalars()
    )


def page_ids(client, headers, bbox, limit=20, extra=""):
    box = ",".join(map(str, bbox))
    url = f"/api/collections/issues/items?limit={limit}&bbox={box}{extra}"
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.get_data()[:300]
    return [f["id"] for f in response.get_json(force=True)["features"]]


def prepared(db_session) -> int:
    return db_session.execute(
        text("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'geoservice_page_%'")
    ).scalar()


@pytest.mark.parametrize("ratio", [0.0, 1e12], ids=["walk", "bitmap"])
def test_a_prepared_page_follows_inserts_updates_moves_and_deletes(
    client, db_session, viewer, monkeypatch, ratio
):
    """Either way of reading the page (WALK_RATIO 0: always the walk; huge: always the
    bitmap), the same prepared statement answers the rows of the moment after each write."""
    monkeypatch.setattr(items, "WALK_RATIO", ratio)
    fill(db_session)
    before = prepared(db_session)
    assert page_ids(client, viewer, BBOX) == expected_ids(db_session, BBOX, 20)
    assert prepared(db_session) == before + 1  # prepared once…
    first = page_ids(client, viewer, BBOX)
    small = (120.21, 33.71, 120.22, 33.72)  # …and reused for another bbox of the same shape
    assert page_ids(client, viewer, small, extra="&status=closed") == expected_ids(
        db_session, small, 20, ["closed"]
    )
    # A new issue with a lower id than the page's last cannot exist, so move and delete
    # features of the page, change a status, and insert one inside.
    db_session.execute(
        text("UPDATE issues SET geom = ST_SetSRID(ST_MakePoint(121, 34), 4326) WHERE id = :i"),
        {"i": first[0]},
    )
    db_session.execute(text("DELETE FROM issues WHERE id = :i"), {"i": first[5]})
    db_session.execute(text("UPDATE issues SET status = 'closed' WHERE id = :i"), {"i": first[7]})
    insert_issue(db_session, 120.23, 33.72)
    after = page_ids(client, viewer, BBOX, limit=500)
    assert after == expected_ids(db_session, BBOX, 500)
    assert first[0] not in after and first[5] not in after and first[7] in after
    assert page_ids(client, viewer, BBOX, extra="&status=open") == expected_ids(
        db_session, BBOX, 20, list(OPEN_STATUSES)
    )
    assert page_ids(client, viewer, small, extra="&status=closed") == expected_ids(
        db_session, small, 20, ["closed"]
    )


def test_walk_and_bitmap_give_the_same_pages(client, db_session, viewer, monkeypatch):
    fill(db_session, 400, seed=9)
    rng = random.Random(1)
    boxes = []
    for _ in range(12):
        w = rng.uniform(0.002, 0.05)
        x, y = rng.uniform(120.19, 120.27 - w), rng.uniform(33.69, 33.76 - w)
        boxes.append((round(x, 6), round(y, 6), round(x + w, 6), round(y + w * 0.7, 6)))
    answers = {}
    for ratio in (0.0, 1e12, items.WALK_RATIO):
        monkeypatch.setattr(items, "WALK_RATIO", ratio)
        answers[ratio] = [page_ids(client, viewer, b, limit=7) for b in boxes]
    assert answers[0.0] == answers[1e12] == answers[items.WALK_RATIO]
    assert answers[0.0] == [expected_ids(db_session, b, 7) for b in boxes]
    assert sum(len(a) == 7 for a in answers[0.0]) >= 6  # most pages are full


def test_a_prepared_page_survives_a_schema_change(client, db_session, viewer):
    """PostgreSQL plans a prepared statement again after DDL on a table it reads; the
    page's result type does not depend on the issues' columns."""
    fill(db_session, 60)
    assert page_ids(client, viewer, BBOX) == expected_ids(db_session, BBOX, 20)
    db_session.execute(text("ALTER TABLE issues ADD COLUMN prepared_probe integer"))
    assert page_ids(client, viewer, BBOX) == expected_ids(db_session, BBOX, 20)
    db_session.execute(text("ALTER TABLE issues DROP COLUMN prepared_probe"))
    assert page_ids(client, viewer, BBOX) == expected_ids(db_session, BBOX, 20)


def test_only_unscoped_first_pages_of_issues_in_a_bbox_are_prepared(app):
    issues = catalogue(app).get("issues")
    assert generic_page(issues, ItemsQuery(bbox=BBOX))
    assert generic_page(issues, ItemsQuery(bbox=BBOX, filters={"status": ["closed"]}))
    assert not generic_page(issues, ItemsQuery())
    assert not generic_page(issues, ItemsQuery(bbox=BBOX, offset=100))
    assert generic_page(issues, ItemsQuery(bbox=BBOX, limit=1000))
    assert not generic_page(issues, ItemsQuery(bbox=BBOX, limit=10_000))
    assert not generic_page(issues, ItemsQuery(bbox=BBOX, scope=("i.leader_id = 1", {})))
    assert not generic_page(issues, ItemsQuery(bbox=BBOX, interval=(None, None)))
    layer = next(c for c in catalogue(app) if c.id != "issues")
    assert not generic_page(layer, ItemsQuery(bbox=BBOX))


def test_a_statement_the_backend_lost_is_prepared_again_outside_a_transaction(
    app, engine, db_session
):
    """`DEALLOCATE ALL` (or DISCARD) by someone else: with no transaction open the page is
    asked again with a new PREPARE; inside one the error is raised, not a wrong answer."""
    from sqlalchemy.orm import Session

    issues = catalogue(app).get("issues")
    query = ItemsQuery(limit=5, bbox=BBOX)
    with app.app_context(), engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        session = Session(bind=connection)
        first = items.items_page(session, issues, query)
        connection.exec_driver_sql("DEALLOCATE ALL")
        again = items.items_page(session, issues, query)
        assert (again.body, again.number_returned) == (first.body, first.number_returned)
        session.close()
        # Other statements prepared on this pooled connection (attribution's) are gone too,
        # and their owners would not know it: the pool must not hand it out again.
        connection.invalidate()
    with app.app_context():
        items.items_page(db_session, issues, query)
        # Only the pages' statements: the suite's shared connection goes on to other tests.
        for name in db_session.connection().connection.info[items.PREPARED]["names"].values():
            db_session.execute(text(f"DEALLOCATE {name}"))
        with pytest.raises(DBAPIError):
            items.items_page(db_session, issues, query)
        db_session.rollback()


def test_a_generic_page_is_the_custom_page_byte_for_byte(app, db_session, monkeypatch):
    """The generic page keeps only the columns its features read (items.page_columns): its
    body, counts and validators' tail equal those of the page planned for its values (every
    column of the rows), whichever way it reads them."""
    from geoservice.httpcache import IssueArea

    fill(db_session, 400, seed=11)
    db_session.execute(
        text(
            "UPDATE issues SET description = repeat('长描述', 50), severity = 3,"
            " deadline = TIMESTAMPTZ '2015-06-01 08:00+08' WHERE id % 4 = 0"
        )
    )
    issues = catalogue(app).get("issues")
    rng = random.Random(3)
    queries = []
    for k in range(10):
        w = rng.uniform(0.003, 0.05)
        x, y = rng.uniform(120.19, 120.27 - w), rng.uniform(33.69, 33.76 - w)
        bbox = (round(x, 6), round(y, 6), round(x + w, 6), round(y + w * 0.7, 6))
        filters = {"status": ["closed", "reported"]} if k % 3 == 0 else {}
        queries.append(ItemsQuery(limit=7 + k, bbox=bbox, filters=filters))
    assert any(generic_page(issues, q) for q in queries)

    def pages(generic: bool, ratio: float):
        monkeypatch.setattr(items, "WALK_RATIO", ratio)
        monkeypatch.setattr(items, "generic_page", lambda c, q: generic and generic_page(c, q))
        out = []
        for q in queries:
            page = items.items_page(db_session, issues, q, "Asia/Shanghai", IssueArea(q.bbox))
            out.append(
                (bytes(page.body), page.number_returned, page.number_matched, page.more,
                 page.last_id, page.changes_below, page.overdue_turns)
            )  # fmt: skip
        return out

    custom = pages(False, items.WALK_RATIO)
    assert sum(p[1] > 0 for p in custom) >= 7
    for ratio in (0.0, 1e12, items.WALK_RATIO):
        assert pages(True, ratio) == custom


def test_counted_from_tiles_says_whether_there_is_a_count_statement(app):
    issues = catalogue(app).get("issues")
    layer = next(c for c in catalogue(app) if c.id != "issues")
    rng = random.Random(4)
    cases = [(issues, ItemsQuery()), (layer, ItemsQuery(bbox=BBOX))]
    for _ in range(300):
        w = rng.choice([0.0005, 0.002, 0.004, 0.01, 0.1])
        x, y = rng.uniform(120.0, 120.5), rng.uniform(33.5, 34.0)
        bbox = (x, y, x + w * rng.uniform(0.5, 1.5), y + w * rng.uniform(0.5, 1.5))
        cases.append((issues, ItemsQuery(bbox=bbox)))
        cases.append((issues, ItemsQuery(bbox=bbox, scope=("i.leader_id = 1", {}))))
        cases.append((issues, ItemsQuery(bbox=bbox, filters={"status": ["closed"]})))
    answers = [items.counted_from_tiles(c, q) for c, q in cases]
    assert answers == [items.count_statement(c, q) is not None for c, q in cases]
    assert 50 < sum(answers) < len(cases) - 50


def test_a_connection_keeps_at_most_its_bound_of_page_statements(
    client, db_session, viewer, monkeypatch
):
    """Each page shape (here: its limit) is a statement of its own; past
    PREPARED_PER_CONNECTION the least recently used is deallocated (each holds ~1 MB of the
    backend's memory), and a shape asked again after that is prepared anew, with the rows of
    the moment."""
    fill(db_session, n=60)
    monkeypatch.setattr(items, "PREPARED_PER_CONNECTION", 3)
    before = prepared(db_session)
    for limit in (5, 6, 7, 8, 9):
        assert page_ids(client, viewer, BBOX, limit) == expected_ids(db_session, BBOX, limit)
        assert prepared(db_session) - before <= 3
    assert prepared(db_session) - before == 3
    kept = db_session.connection().connection.info[items.PREPARED]["names"]
    limits = sorted(int(sql.split("FROM page ORDER BY id LIMIT ")[1].split(")")[0]) for sql in kept)
    assert limits == [7, 8, 9]  # the least recently used (5, 6) went first
    first = expected_ids(db_session, BBOX, 1)[0]
    db_session.execute(text("DELETE FROM issues WHERE id = :id"), {"id": first})
    assert page_ids(client, viewer, BBOX, 5) == expected_ids(db_session, BBOX, 5)
    assert first not in page_ids(client, viewer, BBOX, 5)
    assert prepared(db_session) - before == 3


def test_a_failed_round_trip_leaves_no_statement_untracked(app, engine):
    """A page statement prepared by a round trip that then failed (a timeout, a cancel, an
    error while executing) stays on the backend; the next page deallocates it, so the
    backend holds exactly the statements the connection tracks (each ~1 MB)."""
    from sqlalchemy.orm import Session

    def on_backend(connection) -> set[str]:
        return set(
            connection.execute(
                text("SELECT name FROM pg_prepared_statements WHERE name LIKE 'geoservice_page_%'")
            ).scalars()
        )

    issues = catalogue(app).get("issues")
    with app.app_context(), engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        session = Session(bind=connection)
        items.items_page(session, issues, ItemsQuery(limit=5, bbox=BBOX))
        known = connection.connection.info[items.PREPARED]
        with pytest.raises(DBAPIError):  # prepared, then failed while executing
            items._fetch_prepared(session, "SELECT 1", "SELECT 1 / :x", {"x": 0})
        untracked = on_backend(connection) - set(known["names"].values())
        assert len(untracked) == 1
        page = items.items_page(session, issues, ItemsQuery(limit=6, bbox=BBOX))
        assert page.number_returned >= 0
        assert on_backend(connection) == set(known["names"].values())
        assert not untracked & on_backend(connection)  # the failed statement deallocated
        session.close()
        connection.invalidate()


def test_a_page_in_a_transaction_leaves_plan_caching_as_it_was(app, db_session):
    issues = catalogue(app).get("issues")
    with app.app_context():
        before = db_session.execute(text("SHOW plan_cache_mode")).scalar()
        items.items_page(db_session, issues, ItemsQuery(limit=5, bbox=BBOX))
        assert db_session.execute(text("SHOW plan_cache_mode")).scalar() == before == "auto"
