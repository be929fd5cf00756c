"""README's "set up your city" example, followed verbatim on an empty database with the real
Suzhou SIP files: every `./scripts/flask …` line of the marked block runs as a flask command
(in-process, in the test's transaction), in order; the city's map and API then work."""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

import pytest
from sqlalchemy import text

from geoservice.accounts.accounts import issue_token, user_by_name
from geoservice.areas import hierarchy_audit, service_area
from tests.factories import LAYERS

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- onboard-example:start -->", "<!-- onboard-example:end -->"


def readme_example() -> tuple[dict[str, str], list[list[str]]]:
    """The block's variables and its commands (arguments after ./scripts/flask)."""
    block = (ROOT / "README.md").read_text(encoding="utf-8").split(START)[1].split(END)[0]
    variables: dict[str, str] = {}
    commands: list[list[str]] = []
    for line in block.splitlines():
        line = line.strip()
        if not line or line.startswith(("```", "#")):
            continue
        assignment = re.fullmatch(r"([A-Z_]+)=(\S+)", line)
        if assignment:
            variables[assignment[1]] = assignment[2]
            continue
        assert line.startswith("./scripts/flask "), f"not a flask command: {line}"
        expanded = re.sub(r"\$(\w+)", lambda m: variables[m[1]], line)
        commands.append(shlex.split(expanded)[1:])
    return variables, commands


VARIABLES, COMMANDS = readme_example()
needs_data = pytest.mark.skipif(
    not Path(VARIABLES.get("DATA", "/nonexistent")).is_dir(), reason="SIP files not available"
)


def test_the_example_block_is_the_documented_sequence():
    verbs = [c[0] for c in COMMANDS]
    assert verbs[:3] == ["import-areas", "import-areas", "import-layer"]
    assert [c[1] for c in COMMANDS[:3]] == ["street", "community", "grids"]
    assert "import-roster" in verbs and verbs[-1] == "users"


@needs_data
def test_readme_example_builds_a_working_city(app, db_session, monkeypatch):
    monkeypatch.chdir(ROOT)
    runner = app.test_cli_runner()
    assert db_session.execute(text("SELECT count(*) FROM admin_areas")).scalar() == 0
    outputs = {}
    for args in COMMANDS:
        result = runner.invoke(args=args)
        assert result.exit_code == 0, (args, result.output)
        outputs.setdefault(args[0], []).append(result.output)

    levels = dict(
        db_session.execute(text("SELECT level, count(*) FROM admin_areas GROUP BY 1")).all()
    )
    assert levels == {"street": 5, "community": 178}  # 金胜社区 held back (duplicate code)
    assert "代码 '320506010009' 在文件中重复" in outputs["import-areas"][1]
    assert "'3205050060075010' 格式不对" in outputs["import-layer"][0]
    linked = db_session.execute(text("SELECT count(*), count(community_id) FROM grids")).one()
    assert tuple(linked) == (1300, 1300)
    quirk = db_session.execute(
        text(
            "SELECT DISTINCT a.code FROM grids g JOIN places p ON p.id = g.id"
            " JOIN admin_areas a ON a.id = g.community_id WHERE p.code LIKE '320591010001%'"
        )
    ).scalars()
    assert list(quirk) == ["320506010001"]  # the 6 grids with a foreign prefix: by location
    decisions = db_session.execute(
        text("SELECT accept, count(*) FROM area_link_decisions GROUP BY 1")
    ).all()
    assert [tuple(d) for d in decisions] == [("geometry", 13)]
    link_output = outputs["link-areas"][0]
    assert "✗ 320506010009006：无法按位置归属" in link_output  # lies in 金胜社区's place
    assert "有 2 处编码与位置不一致尚未确认" in link_output
    assert "面积 278.25 km²" in outputs["service-area"][0]
    assert "层级检查" in outputs["coverage"][0]
    # The audit's figures count every finding, not only the ones it lists.
    full = hierarchy_audit.audit(db_session, LAYERS, "grids", 1.0)
    cut = hierarchy_audit.audit(db_session, LAYERS, "grids", 1.0, limit=1)
    assert full["uncovered"]["count"] > 1 and full["not_tiled"]["count"] > 1
    assert len(cut["uncovered"]["items"]) == len(cut["not_tiled"]["items"]) == 1
    assert cut["summary"] == full["summary"]
    assert cut["uncovered"]["area_m2"] == pytest.approx(full["uncovered"]["area_m2"])
    assignments = db_session.execute(text("SELECT count(*) FROM assignments")).scalar()
    assert assignments == 15

    # The map and the API of that city, for the accounts the example created.
    client = app.test_client()
    admin = {
        "Authorization": f"Bearer {issue_token(db_session, user_by_name(db_session, 'sip_admin'))}"
    }
    areas = client.get("/api/areas", headers=admin).get_json()["areas"]
    assert len(areas) == 183
    grids = client.get("/api/collections/grids/items?limit=2", headers=admin).get_json()
    assert grids["numberMatched"] == 1300
    assert all(f["properties"]["community_code"] for f in grids["features"])
    home = client.get("/", headers=admin).get_data(as_text=True)
    assert "斜塘街道" in home and "金鸡湖街道" in home
    coverage = client.get("/coverage", headers=admin)
    assert coverage.status_code == 200 and "胜浦街道" in coverage.get_data(as_text=True)
    west, south, east, north = service_area.extent(db_session, LAYERS)
    # The map opens on the city and groups by its streets and communities.
    page = client.get("/map", headers=admin)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    config = re.search(r'id="gs-map-config">(.*?)</script>', html, re.S)
    settings = json.loads(config[1])
    assert settings["bounds"] == pytest.approx([west, south, east, north])
    themes = {t["id"].split(":")[0] for t in settings["themes"]}
    assert {"street", "community", "grid"} <= themes
    assert json.dumps("专题图（按街道/社区/网格着色）")[1:-1] in html  # the layer control
    counts = client.get("/api/map/counts?of=street&measure=open", headers=admin)
    assert counts.status_code == 200
    lon, lat = (west + east) / 2, (south + north) / 2
    z = 14
    x = int((lon + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
    tile = client.get(f"/api/collections/grids/tiles/{z}/{x}/{y}.pbf", headers=admin)
    assert tile.status_code == 200 and len(tile.data) > 100
    streets = client.get(f"/api/map/areas/street/tiles/{z}/{x}/{y}.pbf", headers=admin)
    assert streets.status_code == 200 and len(streets.data) > 100  # the choropleth's shapes
    assert client.get("/api/rankings?of=street", headers=admin).status_code == 200

    planner = user_by_name(db_session, "xietang")
    scoped = {"Authorization": f"Bearer {issue_token(db_session, planner)}"}
    seen = client.get("/api/collections/grids/items?limit=1", headers=scoped).get_json()
    in_street = db_session.execute(
        text(
            "SELECT count(*) FROM grids g JOIN admin_areas c ON c.id = g.community_id"
            " JOIN admin_areas s ON s.id = c.parent_id WHERE s.code = '320505006'"
        )
    ).scalar()
    assert seen["numberMatched"] == in_street > 200  # 斜塘街道's grids only
