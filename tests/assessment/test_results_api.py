"""Recording results over the API: every bad input is a clear 4xx naming the field and nothing
is half-written; far check-ins are flagged; used standards versions are frozen; sampling is
reproducible from the seed."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import text

from geoservice.accounts.auth import issue_token
from geoservice.assessment import rounds
from geoservice.registry import layers
from tests.api_support import auth
from tests.assessment import case

PHOTO = "data:image/jpeg;base64," + base64.b64encode(case.jpeg()).decode()


@pytest.fixture
def world(app, db_session, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(tmp_path))
    settings = case.issue_settings(app.config, tmp_path)
    built = case.build(db_session, layers(app), settings)
    token = issue_token(db_session, built["inspector"])
    yield {
        **built,
        "session": db_session,
        "inspector_headers": {"Authorization": f"Bearer {token}"},
    }


def counts(session):
    return session.execute(
        text("SELECT (SELECT count(*) FROM assessment_results), (SELECT count(*) FROM issues)")
    ).one()


def post(client, world, site, results, **extra):
    lon, lat = rounds.site_anchor(world["session"], world["sites"][site].id)
    body = {"site_id": world["sites"][site].id, "lon": lon, "lat": lat, "results": results}
    return client.post(
        f"/api/assessment/rounds/{world['round'].id}/results",
        json=body | extra,
        headers=world["inspector_headers"],
    )


def test_bad_results_are_refused_naming_the_field_and_nothing_is_written(client, world):
    std = world["standards"]
    ok = {"standard_id": std["A1"], "outcome": "合格"}
    cases = [
        # 不合格 without a photo (after a good entry: nothing of the submission is kept)
        ([ok, {"standard_id": std["A2"], "outcome": "不合格"}], {}, 422, "results[1].photo"),
        # B1 is for bus stops only
        ([ok, {"standard_id": std["B1"], "outcome": "合格"}], {}, 422, "results[1].standard_id"),
        ([{"standard_id": std["A1"], "outcome": "优秀"}], {}, 422, "results[0].outcome"),
        ([{"standard_id": 999999, "outcome": "合格"}], {}, 422, "results[0].standard_id"),
        ([ok], {"site_id": 999999}, 422, "site_id"),
        ([], {}, 422, "results"),
        ([ok], {"lon": "east"}, 422, "lon"),
    ]
    for results, extra, status, field in cases:
        response = post(client, world, "school1", results, **extra)
        assert response.status_code == status, (field, response.get_json())
        assert response.get_json()["field"] == field
    assert counts(world["session"]) == (0, 0)


def test_a_second_submission_is_refused(client, world):
    std = world["standards"]
    first = post(client, world, "school1", [{"standard_id": std["A1"], "outcome": "合格"}])
    assert first.status_code == 201, first.get_json()
    again = post(
        client, world, "school1",
        [
            {"standard_id": std["A2"], "outcome": "合格"},
            {"standard_id": std["A1"], "outcome": "不合格", "photo": PHOTO},
        ],
    )  # fmt: skip
    assert again.status_code == 409 and again.get_json()["field"] == "results[1].standard_id"
    assert counts(world["session"]) == (1, 0)


def test_a_site_with_results_keeps_its_kind(client, world):
    """Scores read a site's results against its kind's standards: another kind would rewrite
    every round the site was checked in."""
    std = world["standards"]
    assert (
        post(client, world, "school1", [{"standard_id": std["A1"], "outcome": "合格"}]).status_code
        == 201
    )
    planner = auth(world["session"], "planner", "planner_kinds")
    site_id = world["sites"]["school1"].id
    moved = client.patch(f"/api/assessment/sites/{site_id}", json={"kind": "bus"}, headers=planner)
    assert moved.status_code == 409 and moved.get_json()["field"] == "kind"
    unrecorded = world["sites"]["school2"].id
    free = client.patch(
        f"/api/assessment/sites/{unrecorded}", json={"kind": "bus"}, headers=planner
    )
    assert free.status_code == 200


def test_a_failure_with_a_photo_raises_an_issue_and_far_checkins_are_flagged(client, world):
    std = world["standards"]
    response = post(
        client, world, "bus2",
        [{"standard_id": std["B1"], "outcome": "不合格", "photo": PHOTO, "note": "站牌破损"}],
        lon=case.LON0 + 2500 * case.M + 0.01,  # ~900 m east of the stop
    )  # fmt: skip
    assert response.status_code == 201, response.get_json()
    (result,) = response.get_json()["results"]
    assert result["far"] is True and result["distance_m"] > 800
    issue = client.get(f"/api/issues/{result['issue_id']}", headers=auth(world["session"], "admin"))
    props = issue.get_json()["properties"]
    assert props["source"] == "模拟测评" and props["category"] == "设施损坏"
    assert "站牌破损" in props["description"]
    leader = world["session"].scalar(
        text("SELECT l.name FROM issues i JOIN leaders l ON l.id = i.leader_id WHERE i.id = :i"),
        {"i": result["issue_id"]},
    )
    assert leader == "王三"


def test_only_the_assigned_inspector_or_a_planner_records(client, world):
    other = auth(world["session"], "inspector", "someone_else")
    lon, lat = rounds.site_anchor(world["session"], world["sites"]["bus1"].id)
    response = client.post(
        f"/api/assessment/rounds/{world['round'].id}/results",
        json={"site_id": world["sites"]["bus1"].id, "lon": lon, "lat": lat,
              "results": [{"standard_id": world["standards"]["B1"], "outcome": "合格"}]},
        headers=other,
    )  # fmt: skip
    assert response.status_code == 403


def test_a_used_standards_version_is_frozen_and_can_be_copied(client, world):
    planner = auth(world["session"], "planner", "planner_std")
    vid = world["version"].id
    tree = client.get(f"/api/assessment/standards/{vid}", headers=planner).get_json()
    assert tree["editable"] is True
    post(client, world, "bus1", [{"standard_id": world["standards"]["B1"], "outcome": "合格"}])
    refused = client.put(f"/api/assessment/standards/{vid}", json={"items": tree["items"]},
                         headers=planner)  # fmt: skip
    assert refused.status_code == 409 and refused.get_json()["field"] == "version_id"
    copy = client.post(f"/api/assessment/standards/{vid}/copy", json={"name": "测试体系（修订）"},
                       headers=planner)  # fmt: skip
    assert copy.status_code == 201 and copy.get_json()["standards"] == 4
    edited = client.put(
        f"/api/assessment/standards/{copy.get_json()['id']}",
        json={"items": tree["items"][:1]},
        headers=planner,
    )
    assert edited.status_code == 200 and edited.get_json()["standards"] == 3


def test_a_standards_sheet_is_checked_whole(client, world):
    planner = auth(world["session"], "planner", "planner_sheet")
    bad = {
        "name": "坏体系",
        "items": [{"code": "1", "title": "项目", "contents": [{"code": "1.1", "title": "内容",
                   "standards": [
                       {"code": "X1", "text": "标准一", "score": 5, "kinds": ["school"],
                        "category": "环境卫生"},
                       {"code": "X2", "text": "标准二", "score": -1, "kinds": ["school"],
                        "category": "环境卫生"},
                       {"code": "X3", "text": "标准三", "score": 5, "kinds": ["zoo"],
                        "category": "环境卫生"},
                   ]}]}],
    }  # fmt: skip
    response = client.post("/api/assessment/standards", json=bad, headers=planner)
    assert response.status_code == 422
    errors = response.get_json()["detail"]["errors"]
    assert [(e["row"], e["column"]) for e in errors] == [(2, "分值"), (3, "适用点位类别")]
    names = world["session"].scalars(text("SELECT name FROM standard_versions")).all()
    assert names == ["测试体系"]


def test_a_standards_text_keeps_its_chinese_punctuation(client, world):
    """The 测评体系 read back is the one uploaded: 「，：；（）」 stay full-width, while a
    full-width code is made plain (Ｙ１ → Y1)."""
    planner = auth(world["session"], "planner", "planner_punct")
    words = "地面干净，无垃圾；含中文冒号：（修订）"
    body = {
        "name": "标点体系",
        "items": [{"code": "1", "title": "公共环境（一）", "contents": [{"code": "1.1",
                   "title": "校园：周边", "standards": [
                       {"code": "Ｙ１", "text": words, "score": 5, "kinds": ["school"],
                        "category": "环境卫生"}]}]}],
    }  # fmt: skip
    created = client.post("/api/assessment/standards", json=body, headers=planner)
    assert created.status_code == 201, created.get_json()
    stored = (
        world["session"]
        .execute(
            text("SELECT code, text FROM standards WHERE version_id = :v"),
            {"v": created.get_json()["id"]},
        )
        .one()
    )
    assert tuple(stored) == ("Y1", words)


def test_sampling_is_reproducible_from_the_seed(world):
    session = world["session"]
    for i in range(12):
        case.sites.create_site(
            session,
            {"code": f"extra{i}", "name": f"站台{i}", "kind": "bus",
             "lon": case.LON0 + (100 + i * 20) * case.M, "lat": case.LAT0},
        )  # fmt: skip
    one = rounds.sample_sites(session, 3, seed=42)
    assert one == rounds.sample_sites(session, 3, seed=42)
    assert one != rounds.sample_sites(session, 3, seed=43)
    # 3 per kind per street: east has 1 school and 13 stops, west 1 school and 1 stop.
    assert len(one) == 1 + 3 + 1 + 1


@pytest.mark.parametrize(
    ("fields", "field", "title"),
    [
        ({"starts_on": "下周一"}, "starts_on", "开始日期"),
        ({"version_id": "第二版"}, "version_id", "测评体系"),
        ({"sample_per_kind": 0.5}, "sample_per_kind", "每类抽取点位数"),
    ],
)
def test_a_bad_round_field_is_named_as_the_form_names_it(client, world, fields, field, title):
    planner = auth(world["session"], "planner", "planner_round")
    body = {"name": "第二轮", "starts_on": "2026-11-16", "ends_on": "2026-11-20",
            "version_id": world["version"].id, **fields}  # fmt: skip
    refused = client.post("/api/assessment/rounds", json=body, headers=planner)
    error = refused.get_json()
    assert refused.status_code == 422 and error["field"] == field, error
    assert error["error"].startswith(title), error
