"""包保 on the demo county: the audit finds the deliberate holes, the 一览表 lists every active
assignment, and "who was responsible then" agrees with what issues recorded at report time."""

from __future__ import annotations

import io

from openpyxl import load_workbook
from sqlalchemy import func, select, text

from geoservice.models import Assignment, Issue
from geoservice.registry import BASE_LAYER, layers
from geoservice.responsibility import responsibility as resp
from geoservice.responsibility import roster, roster_export
from geoservice.responsibility.coverage import coverage_report
from geoservice.vocab import ASSIGNMENT_ROLES, LEADER_LEVELS


def test_demo_audit_finds_the_deliberate_holes_and_nothing_else(app, demo_session, demo_connection):
    report = coverage_report(demo_session, layers(app), BASE_LAYER)
    s = report["summary"]
    # The demo leaves ~3 % of each layer unassigned and two leaders idle, on purpose.
    assert s["unassigned"] > 0
    assert {item["layer"] for item in report["layers"] if item["unassigned"]["count"]} == set(
        layers(app).names
    )
    assert s["idle_leaders"] >= 1
    # Its grids tile the county but for the planted survey defects: one withheld grid leaves
    # one gap, one widened grid overlaps its neighbours.
    defects = demo_connection.county.defects
    assert s["gaps"] == 1
    assert s["overlaps"] >= 1
    (widened,) = defects.widened
    for overlap in report["overlaps"]["features"]["features"]:
        pair = {overlap["properties"]["a"]["code"], overlap["properties"]["b"]["code"]}
        assert widened in pair
    assert report["gaps"]["service_area_source"] == "admin_areas"
    assert report["gaps"]["service_area_m2"] > 1e6
    assert s["dangling_assignments"] == 0
    # Cross-check the unassigned count with a plain query.
    expected = demo_session.scalar(
        text("""SELECT count(*) FROM places p WHERE NOT EXISTS (
                  SELECT 1 FROM assignments a JOIN leaders l ON l.id = a.leader_id
                  WHERE a.place_id = p.id AND a.valid_to IS NULL AND l.active)""")
    )
    assert s["unassigned"] == expected


def test_responsible_at_agrees_with_the_leader_issues_recorded(demo_session):
    issues = demo_session.scalars(
        select(Issue)
        .where(Issue.primary_place_id.is_not(None), ~Issue.attribution.has_key("manual"))
        .order_by(Issue.id)
        .limit(300)
    ).all()
    assert len(issues) == 300
    for issue in issues:
        found = resp.responsible_at(
            demo_session, issue.primary_place_id, issue.reported_at, primary_only=True
        )
        assert [a.leader_id for a in found] == ([issue.leader_id] if issue.leader_id else [])


def test_demo_export_lists_every_active_assignment_and_reimports_unchanged(app, demo_session):
    active = demo_session.scalar(
        select(func.count()).select_from(Assignment).where(Assignment.valid_to.is_(None))
    )
    buffer = io.BytesIO()
    written = roster_export.export_roster(
        demo_session, layers(app), buffer, levels=LEADER_LEVELS, timezone="Asia/Shanghai"
    )
    assert written == active > 0
    ws = load_workbook(io.BytesIO(buffer.getvalue())).active
    assert ws.max_row == 3 + active
    report = roster.import_roster(
        demo_session,
        layers(app),
        buffer.getvalue(),
        roles=ASSIGNMENT_ROLES,
        levels=LEADER_LEVELS,
        timezone="Asia/Shanghai",
        dry_run=True,
    )
    assert report.ok, [r.as_dict() for r in report.rejected][:3]
    assert report.counts["unchanged"] == active
