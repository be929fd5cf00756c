"""包保 services: validation, assignments with history, "who was responsible at D", deletion."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from geoservice.models import Assignment, Leader, Unit
from geoservice.responsibility import responsibility as resp
from geoservice.vocab import ASSIGNMENT_ROLES, LEADER_LEVELS
from tests.support_responsibility import add_person, add_place, add_unit, day

ROLES = list(ASSIGNMENT_ROLES)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("13812345678", "13812345678"),
        ("138 1234 5678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
        ("0515-88881234", "0515-88881234"),
        ("051588881234", "051588881234"),
        ("010-1234567", "010-1234567"),
        ("0515-88881234-801", "0515-88881234-801"),
        ("0515-88881234转801", "0515-88881234-801"),
        ("", None),
        (None, None),
        (13812345678.0, "13812345678"),
    ],
)
def test_mainland_phone_numbers_are_accepted_and_normalised(raw, normalised):
    assert resp.normalise_phone(raw) == normalised


@pytest.mark.parametrize(
    "raw",
    ["12812345678", "1381234567", "138123456789", "88881234", "0515-881234", "phone", "110"],
)
def test_bad_phone_numbers_are_refused_with_a_hint(raw):
    with pytest.raises(resp.Invalid) as exc:
        resp.normalise_phone(raw)
    assert "电话号码" in exc.value.message and "手机号" in exc.value.message
    assert exc.value.field == "phone"


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("张伟", True),
        (" 欧阳 娜娜 ", True),
        ("买买提・艾力", True),
        ("张", False),
        ("Zhang Wei", False),
        ("张伟1", False),
        ("·张伟", False),
        ("张" * 26, False),
    ],
)
def test_leader_names_are_chinese_of_sane_length(raw, ok):
    if ok:
        assert resp.normalise_person_name(raw) in ("张伟", "欧阳娜娜", "买买提·艾力")
    else:
        with pytest.raises(resp.Invalid):
            resp.normalise_person_name(raw)


def test_unit_names_allow_brackets_and_digits_but_need_chinese():
    assert resp.normalise_unit_name("县城市管理局（综合执法局）") == "县城市管理局（综合执法局）"
    assert resp.normalise_unit_name("中国移动 演示县分公司") == "中国移动演示县分公司"
    for bad in ("ABC", "局", "县<script>局", "单" * 61):
        with pytest.raises(resp.Invalid):
            resp.normalise_unit_name(bad)


def test_leader_level_comes_from_the_configured_list(db_session):
    with pytest.raises(resp.Invalid) as exc:
        resp.create_leader(db_session, {"name": "张伟", "level": "省级"}, LEADER_LEVELS)
    assert exc.value.field == "level"
    leader = resp.create_leader(db_session, {"name": "张伟", "level": "省级"}, ["省级"])
    assert leader.level == "省级"


def test_reassign_closes_the_old_assignment_and_both_dates_answer(db_session):
    grid = add_place(db_session, "grid", "320999001001001", "第一网格")
    old = add_person(db_session, "王芳")
    new = add_person(db_session, "李强")
    first = resp.assign(
        db_session,
        leader_id=old.id,
        place_id=grid.id,
        role="网格长",
        roles=ROLES,
        valid_from=day("2026-01-01"),
    ).assignment
    result = resp.reassign(db_session, first.id, new.id, at=day("2026-06-01"))

    assert first.valid_to == day("2026-06-01")
    assert result.closed == [first]
    rows = db_session.scalars(select(Assignment).where(Assignment.place_id == grid.id)).all()
    assert len(rows) == 2  # history kept, nothing overwritten

    def primary_on(text):
        found = resp.responsible_at(db_session, grid.id, day(text), primary_only=True)
        return [a.leader.name for a in found]

    assert primary_on("2025-12-31") == []
    assert primary_on("2026-03-01") == ["王芳"]
    assert primary_on("2026-05-31") == ["王芳"]
    # The day of the handover belongs to the new leader (valid_to is exclusive).
    assert primary_on("2026-06-01") == ["李强"]
    assert primary_on("2026-07-01") == ["李强"]


def test_responsible_at_lists_every_role_primary_first(db_session):
    road = add_place(db_session, "road", "R0001", "人民路")
    a = add_person(db_session, "赵敏")
    b = add_person(db_session, "钱进")
    resp.assign(
        db_session,
        leader_id=b.id,
        place_id=road.id,
        role="包保责任人",
        roles=ROLES,
        is_primary=False,
        valid_from=day("2026-02-01"),
    )
    resp.assign(
        db_session,
        leader_id=a.id,
        place_id=road.id,
        role="道路长",
        roles=ROLES,
        valid_from=day("2026-03-01"),
    )
    found = resp.responsible_at(db_session, road.id, day("2026-04-01"))
    assert [(x.leader.name, x.is_primary) for x in found] == [("赵敏", True), ("钱进", False)]
    assert [x.leader.name for x in resp.responsible_at(db_session, road.id, day("2026-02-15"))] == [
        "钱进"
    ]


def test_a_second_primary_is_refused_unless_it_replaces_the_first(db_session):
    market = add_place(db_session, "market", "M01", "城北农贸市场")
    a = add_person(db_session, "孙丽")
    b = add_person(db_session, "周杰")
    first = resp.assign(
        db_session,
        leader_id=a.id,
        place_id=market.id,
        role="点长",
        roles=ROLES,
        valid_from=day("2026-01-01"),
    ).assignment
    with pytest.raises(resp.Conflict) as exc:
        resp.assign(db_session, leader_id=b.id, place_id=market.id, role="联点领导", roles=ROLES)
    assert "孙丽" in exc.value.message
    result = resp.assign(
        db_session,
        leader_id=b.id,
        place_id=market.id,
        role="联点领导",
        roles=ROLES,
        valid_from=day("2026-05-01"),
        replace_primary=True,
    )
    assert result.closed == [first] and first.valid_to == day("2026-05-01")
    # A non-primary helper does not disturb the primary.
    resp.assign(
        db_session,
        leader_id=a.id,
        place_id=market.id,
        role="包保责任人",
        roles=ROLES,
        is_primary=False,
    )
    primaries = resp.responsible_at(db_session, market.id, primary_only=True)
    assert [x.leader.name for x in primaries] == ["周杰"]


def test_backdated_primary_overlapping_history_is_refused(db_session):
    grid = add_place(db_session, "grid", "320999001001002", "第二网格")
    a, b, c = (add_person(db_session, n) for n in ("吴刚", "郑爽", "冯巩"))
    first = resp.assign(
        db_session,
        leader_id=a.id,
        place_id=grid.id,
        role="网格长",
        roles=ROLES,
        valid_from=day("2026-01-01"),
    ).assignment
    resp.reassign(db_session, first.id, b.id, at=day("2026-04-01"))
    # c as primary from February would overlap a's closed term: two primaries at once.
    with pytest.raises(resp.Conflict):
        resp.assign(
            db_session,
            leader_id=c.id,
            place_id=grid.id,
            role="网格长",
            roles=ROLES,
            valid_from=day("2026-02-01"),
            replace_primary=True,
        )


def test_duplicate_role_unknown_role_future_dates_and_inactive_leaders_are_refused(db_session):
    grid = add_place(db_session, "grid", "320999001001003", "第三网格")
    a = add_person(db_session, "陈晨")
    resp.assign(db_session, leader_id=a.id, place_id=grid.id, role="网格长", roles=ROLES)
    with pytest.raises(resp.Conflict):
        resp.assign(
            db_session,
            leader_id=a.id,
            place_id=grid.id,
            role="网格长",
            roles=ROLES,
            is_primary=False,
        )
    with pytest.raises(resp.Invalid) as exc:
        resp.assign(db_session, leader_id=a.id, place_id=grid.id, role="大队长", roles=ROLES)
    assert exc.value.field == "role"
    with pytest.raises(resp.Invalid):
        resp.assign(
            db_session,
            leader_id=a.id,
            place_id=grid.id,
            role="网格员",
            roles=ROLES,
            is_primary=False,
            valid_from=day("2099-01-01"),
        )
    idle = add_person(db_session, "褚卫", active=False)
    with pytest.raises(resp.Conflict):
        resp.assign(
            db_session,
            leader_id=idle.id,
            place_id=grid.id,
            role="网格员",
            roles=ROLES,
            is_primary=False,
        )
    with pytest.raises(resp.NotFound):
        resp.assign(db_session, leader_id=a.id, place_id=999_999, role="网格员", roles=ROLES)


def test_ending_an_assignment_keeps_it_as_history(db_session):
    compound = add_place(db_session, "compound", "C01", "幸福小区")
    a = add_person(db_session, "蒋欣")
    row = resp.assign(
        db_session,
        leader_id=a.id,
        place_id=compound.id,
        role="楼栋长",
        roles=ROLES,
        valid_from=day("2026-01-01"),
    ).assignment
    with pytest.raises(resp.Invalid):
        resp.end_assignment(db_session, row.id, at=day("2025-12-01"))
    resp.end_assignment(db_session, row.id, at=day("2026-02-01"), note="调离")
    assert row.valid_to == day("2026-02-01") and row.note == "调离"
    with pytest.raises(resp.Conflict):
        resp.end_assignment(db_session, row.id)
    assert resp.responsible_at(db_session, compound.id) == []
    assert [x.id for x in resp.responsible_at(db_session, compound.id, day("2026-01-15"))] == [
        row.id
    ]


def test_leader_delete_is_refused_while_active_then_deactivate_ends_assignments(db_session):
    grid = add_place(db_session, "grid", "320999001001004", "第四网格")
    a = add_person(db_session, "沈腾")
    resp.assign(
        db_session,
        leader_id=a.id,
        place_id=grid.id,
        role="网格长",
        roles=ROLES,
        valid_from=day("2026-01-01"),
    )
    with pytest.raises(resp.Conflict) as exc:
        resp.delete_leader(db_session, a.id)
    listed = exc.value.detail["active_assignments"]
    assert [x["place"]["code"] for x in listed] == ["320999001001004"]

    ended = resp.deactivate_leader(db_session, a.id, at=day("2026-03-01"))
    assert [x.valid_to for x in ended] == [day("2026-03-01")]
    assert db_session.get(Leader, a.id).active is False
    # Still refused: the history must stay attached to the person.
    with pytest.raises(resp.Conflict):
        resp.delete_leader(db_session, a.id)

    mistake = add_person(db_session, "韩梅")
    resp.delete_leader(db_session, mistake.id)
    assert db_session.get(Leader, mistake.id) is None


def test_unit_head_sees_the_units_leaders(db_session):
    unit = add_unit(db_session, "县住建局")
    head = add_person(db_session, "杨帆", unit, is_unit_head=True)
    member = add_person(db_session, "朱琳", unit)
    other = add_person(db_session, "秦岚", add_unit(db_session, "县交通局"))
    assert sorted(resp.leaders_in_view(db_session, head)) == sorted([head.id, member.id])
    assert resp.leaders_in_view(db_session, member) == [member.id]
    assert other.id not in resp.leaders_in_view(db_session, head)


def test_unit_delete_refused_while_it_has_leaders(db_session):
    unit = add_unit(db_session, "县卫健委")
    add_person(db_session, "许晴", unit)
    with pytest.raises(resp.Conflict):
        resp.delete_unit(db_session, unit.id)
    empty = resp.create_unit(db_session, "县文旅局", is_lead=True)
    resp.delete_unit(db_session, empty.id)
    assert db_session.get(Unit, empty.id) is None
