"""json_object_text writes the same bytes as json_build_object(…)::text, for the values a
feature's properties hold: text needing escapes, NULLs of every kind, integers, booleans and
timestamps in the session's time zone."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from geoservice.catalogue.catalogue import JSON, RAW, json_object_text

ROWS = """(VALUES
  ('plain'::varchar, 1::smallint, 2147483647, true, timestamptz '2026-11-30 16:00:00+00',
   NULL::timestamptz, 'a'::text),
  ('引号"与\\反斜杠', '-32768'::smallint, NULL::int, false,
   timestamptz '2015-06-30 23:59:59.999999+00', timestamptz '1999-12-31 16:00:00.5+00',
   E'换行\\n制表\\t回车\\r响铃\\x07'),
  (NULL::varchar, NULL::smallint, 0, NULL::boolean, NULL::timestamptz,
   timestamptz '2026-03-08 02:30:00-05', E'表情😀 </script> \\u2028'),
  (''::varchar, 0::smallint, -1, true, timestamptz '2026-12-04 00:00:00+08', NULL::timestamptz,
   NULL::text)
) AS t(name, severity, count, flag, at, other_at, note)"""

PAIRS = [
    ("name", "t.name", JSON),
    ("severity", "t.severity", RAW),
    ("count", "t.count", RAW),
    ("flag", "t.flag", RAW),
    ("open", "(t.flag AND t.count > 0)", RAW),
    ("at", "t.at", JSON),
    ("other_at", "t.other_at", JSON),
    ("note", "t.note", JSON),
    ("label", "CASE t.flag WHEN true THEN '是' WHEN false THEN '否' END", JSON),
]


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "UTC", "America/New_York"])
def test_the_same_text_as_json_build_object(db_session, zone):
    db_session.execute(text("SELECT set_config('TimeZone', :zone, true)"), {"zone": zone})
    built = "json_build_object(" + ", ".join(f"'{k}', {e}" for k, e, _ in PAIRS) + ")::text"
    rows = db_session.execute(text(f"SELECT {json_object_text(PAIRS)}, {built} FROM {ROWS}")).all()
    assert len(rows) == 4
    for concatenated, reference in rows:
        assert concatenated == reference


def test_keys_and_kinds_are_checked():
    with pytest.raises(AssertionError):
        json_object_text([('a", "b', "t.x", JSON)])
    with pytest.raises(AssertionError):
        json_object_text([("a", "t.x", "number")])
