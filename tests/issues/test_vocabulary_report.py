"""The API reads the vocabularies in force at the moment of each write (issue 17 §3): a source
added now is accepted by the next report, one planned for tomorrow is not yet; a category
retired now refuses new reports in Chinese while the issue that has it keeps it; the roster
upload takes a role added now. (Rules here start "now": the API never back-dates a rule; the
hand-built 2015 cases are in tests/test_vocabulary_lists.py.)"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from geoservice.models import Assignment, Issue
from geoservice.vocab import ASSIGNMENT_ROLES, CATEGORY_DEADLINE_HOURS, ISSUE_SOURCES
from tests.issues.test_report import URL, report
from tests.test_roster import workbook


def change(client, layout, key, value, valid_from=None):
    body = {"key": key, "value": value, "note": "市创文办通知"}
    if valid_from:
        body["valid_from"] = valid_from.isoformat()
    r = client.post("/api/rule-settings", json=body, headers=layout.headers("admin"))
    assert r.status_code == 201, r.get_json()


def test_sources_and_categories_in_force_at_the_report(client, layout, db_session):
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    change(client, layout, "issue_sources", [*ISSUE_SOURCES, "网络舆情"])
    change(client, layout, "issue_sources", [*ISSUE_SOURCES, "网络舆情", "人大建议"], tomorrow)
    assert report(client, layout, 100, 170, source="网络舆情").status_code == 201
    planned = report(client, layout, 100, 170, source="人大建议")
    assert planned.status_code == 422 and planned.get_json()["field"] == "source"
    assert "人大建议" not in planned.get_json()["detail"]["sources"]

    old = report(client, layout, 100, 170, category="乱贴乱画").get_json()
    change(
        client, layout, "issue_categories", [c for c in CATEGORY_DEADLINE_HOURS if c != "乱贴乱画"]
    )
    refused = report(client, layout, 100, 170, category="乱贴乱画")
    assert refused.status_code == 422 and refused.get_json()["field"] == "category"
    assert "问题类别「乱贴乱画」已停用，不再受理新上报" in refused.get_json()["error"]
    # The issue that has it keeps it, and is still read and filtered by it.
    assert db_session.get(Issue, old["id"]).category == "乱贴乱画"
    viewer = layout.headers("viewer")
    found = client.get(URL, query_string={"category": "乱贴乱画"}, headers=viewer).get_json()
    assert [f["id"] for f in found["features"]] == [old["id"]]
    assert client.get(URL, query_string={"source": "网络舆情"}, headers=viewer).status_code == 200
    # The OpenAPI document's enums follow the vocabularies in force.
    doc = client.get("/api/openapi", headers=viewer).get_data(as_text=True)
    assert "网络舆情" in doc


def test_a_role_added_now_is_taken_by_the_roster_upload(client, layout, db_session):
    row = ["周杰", "巷长", "", "13812345678", "村社区", "巷长", "网格", "320999001001002", "", "否"]

    def upload():
        return client.post(
            "/api/roster/import",
            data={"file": (io.BytesIO(workbook([row])), "清单.xlsx")},
            headers=layout.headers("admin"),
            content_type="multipart/form-data",
        )

    refused = upload()
    assert refused.status_code == 422 and "巷长" in str(refused.get_json()["detail"])
    change(client, layout, "assignment_roles", [*ASSIGNMENT_ROLES, "巷长"])
    done = upload()
    assert done.status_code == 200, done.get_json()
    assert db_session.query(Assignment).filter_by(role="巷长").count() == 1


def test_a_role_whose_removal_is_planned_is_no_longer_handed_out(client, layout):
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    change(client, layout, "assignment_roles", [r for r in ASSIGNMENT_ROLES if r != "单元长"],
           tomorrow)  # fmt: skip
    body = {"leader_id": layout.leaders["other"].id, "place_id": layout.places["market"].id}
    refused = client.post("/api/assignments", json=body | {"role": "单元长"},
                          headers=layout.headers("admin"))  # fmt: skip
    assert refused.status_code == 400 and refused.get_json()["field"] == "role"
    assert "单元长" not in refused.get_json()["detail"]["allowed"]
    done = client.post("/api/assignments", json=body | {"role": "点长"},
                       headers=layout.headers("admin"))  # fmt: skip
    assert done.status_code == 201, done.get_json()
