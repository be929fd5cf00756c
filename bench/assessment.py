"""Mock-evaluation benchmark (issue 15): a round of 10,200 sites × 15 applicable standards
(153,000 results) scored and ranked; the sites layer of 10,200 points drawn as vector tiles.

Run with ./bench/assessment.sh. Data generated in SQL (34 kinds, 20 streets × 10 communities,
2,000 点长, 180 standards, each kind with 15 of them; 10 % failures, 2 % 不适用).
Targets: scores and ranks in under 2 s; a tile in under 100 ms.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

from sqlalchemy import text

from geoservice import create_app, migrate
from geoservice.assessment import scores
from geoservice.catalogue.items import ItemsQuery
from geoservice.catalogue.tiles import render_tile
from geoservice.db import database

LON0, LAT0 = 119.0, 32.0  # a synthetic county, ~30 km across


def generate(session) -> None:
    s = session.execute
    s(
        text("""INSERT INTO admin_areas (level, code, name, geom) VALUES ('county', '990000',
      '基准县', ST_Multi(ST_MakeEnvelope(:x0, :y0, :x0 + 0.3, :y0 + 0.3, 4326)))"""),
        {"x0": LON0, "y0": LAT0},
    )
    s(
        text("""INSERT INTO admin_areas (level, code, name, parent_id, geom)
      SELECT 'street', '990000' || lpad(i::text, 3, '0'), '街道' || i, 1,
        ST_Multi(ST_MakeEnvelope(:x0 + (i - 1) % 5 * 0.06, :y0 + (i - 1) / 5 * 0.075,
          :x0 + ((i - 1) % 5 + 1) * 0.06, :y0 + ((i - 1) / 5 + 1) * 0.075, 4326))
      FROM generate_series(1, 20) i"""),
        {"x0": LON0, "y0": LAT0},
    )
    s(
        text("""INSERT INTO admin_areas (level, code, name, parent_id, geom)
      SELECT 'community', st.code || lpad(j::text, 3, '0'), st.name || '社区' || j, st.id,
        ST_Multi(ST_MakeEnvelope(ST_XMin(st.geom) + (j - 1) % 5 * 0.012, ST_YMin(st.geom)
          + (j - 1) / 5 * 0.0375, ST_XMin(st.geom) + ((j - 1) % 5 + 1) * 0.012,
          ST_YMin(st.geom) + ((j - 1) / 5 + 1) * 0.0375, 4326))
      FROM admin_areas st, generate_series(1, 10) j WHERE st.level = 'street'""")
    )
    s(text("INSERT INTO units (name) SELECT '单位' || i FROM generate_series(1, 100) i"))
    s(
        text("""INSERT INTO leaders (name, title, unit_id, level)
      SELECT '点长' || i, '', (SELECT min(id) FROM units) + i % 100, '村社区'
      FROM generate_series(1, 2000) i""")
    )
    s(
        text("""INSERT INTO site_kinds (code, name, claim_radius_m, precedence)
      SELECT 'k' || i, '类别' || i, 30, 50 FROM generate_series(1, 34) i""")
    )
    s(
        text("""INSERT INTO places (layer, code, name)
      SELECT 'site', 'S' || i, '点位' || i FROM generate_series(1, 10200) i""")
    )
    s(
        text("""INSERT INTO sites (id, kind_id, geom, community_area_id)
      SELECT p.id, (SELECT min(id) FROM site_kinds) + n % 34,
        ST_SetSRID(ST_MakePoint(ST_XMin(c.geom) + 0.012 * ((p.n * 7919) % 997) / 997.0,
          ST_YMin(c.geom) + 0.0375 * ((p.n * 104729) % 991) / 991.0), 4326), c.id
      FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM places WHERE layer = 'site') p
      JOIN LATERAL (SELECT id, geom FROM admin_areas WHERE level = 'community'
        ORDER BY id OFFSET (p.n % 200) LIMIT 1) c ON TRUE""")
    )
    s(
        text("""INSERT INTO assignments (leader_id, place_id, role, is_primary, valid_from)
      SELECT (SELECT min(id) FROM leaders) + s.id % 2000, s.id, '点长', true, '2026-01-01'
      FROM sites s""")
    )
    s(text("INSERT INTO standard_versions (name) VALUES ('基准体系')"))
    s(
        text("""INSERT INTO standard_items (version_id, code, title)
      SELECT 1, i::text, '项目' || i FROM generate_series(1, 12) i""")
    )
    s(
        text("""INSERT INTO standard_contents (item_id, code, title)
      SELECT it.id, it.code || '.' || j, '内容' || j FROM standard_items it,
        generate_series(1, 7) j""")
    )
    s(
        text("""INSERT INTO standards (version_id, content_id, code, text, score, category,
        negative_list, position)
      SELECT 1, (SELECT min(id) FROM standard_contents) + i % 84, 'B' || i, '标准' || i,
        5 + i % 3 * 5, '环境卫生', i % 60 = 0, i FROM generate_series(1, 180) i""")
    )
    # Kind k gets 15 standards: those i with i % 12 = k % 12 (180 / 12 = 15 per class).
    s(
        text("""INSERT INTO standard_kinds (standard_id, kind_id)
      SELECT sd.id, k.id FROM standards sd JOIN site_kinds k ON sd.position % 12 = k.id % 12""")
    )
    s(
        text("""INSERT INTO assessment_rounds (name, starts_on, ends_on, version_id)
      VALUES ('基准轮', '2026-11-01', '2026-11-05', 1)""")
    )
    s(text("INSERT INTO round_sites (round_id, site_id) SELECT 1, id FROM sites"))
    s(
        text("""INSERT INTO assessment_results (round_id, site_id, standard_id, outcome,
        photo_id, recorded_at)
      SELECT 1, s.id, sk.standard_id,
        CASE WHEN hashint < 2 THEN 'na' ELSE 'pass' END, NULL,
        '2026-11-02 10:00+08'
      FROM sites s JOIN standard_kinds sk ON sk.kind_id = s.kind_id,
        LATERAL (SELECT abs(hashtext(s.id || '-' || sk.standard_id)) % 100 AS hashint) h""")
    )
    # 10 % failures: a fail needs a photo (and an issue in real use); one shared photo row.
    s(
        text("""WITH i AS (INSERT INTO issues (geom, category, source) VALUES
      (ST_SetSRID(ST_MakePoint(:x, :y), 4326), '环境卫生', '模拟测评') RETURNING id)
      INSERT INTO photos (issue_id, kind, sha256, content_type, size_bytes)
      SELECT id, 'before', repeat('0', 64), 'image/jpeg', 1 FROM i"""),
        {"x": LON0 + 0.1, "y": LAT0 + 0.1},
    )
    s(text("ALTER TABLE assessment_results DISABLE TRIGGER assessment_results_immutable"))
    s(
        text("""UPDATE assessment_results
      SET outcome = 'fail', photo_id = (SELECT min(id) FROM photos)
      WHERE abs(hashtext(id::text)) % 100 < 10 AND outcome = 'pass'""")
    )
    s(text("ALTER TABLE assessment_results ENABLE TRIGGER assessment_results_immutable"))
    s(text("ANALYZE"))


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    r = math.radians(lat)
    return int((lon + 180) / 360 * n), int(
        (1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * n
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    url = os.environ["BENCH_DATABASE_URL"]
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    engine = database(app).engine
    with app.app_context():
        if args.rebuild:
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
                        " CREATE EXTENSION IF NOT EXISTS postgis"
                    )
                )
        migrate.upgrade(engine)
        session = database(app).session()
        if not session.scalar(text("SELECT count(*) FROM sites")):
            start = time.perf_counter()
            generate(session)
            session.commit()
            print(f"generated in {time.perf_counter() - start:.1f} s")
        n_results = session.scalar(text("SELECT count(*) FROM assessment_results"))
        n_sites = session.scalar(text("SELECT count(*) FROM sites"))
        print(f"sites {n_sites}, results {n_results}")
        settings = scores.ScoreSettings()

        def score_and_rank():
            sites = scores.site_scores(session, 1, settings)
            return [
                scores.group_scores(sites, of, settings)
                for of in ("site", "kind", "community", "street", "unit", "leader")
            ]

        t, _ = timed(score_and_rank)
        print(f"scores + 6 rankings (site…点长): median {t * 1000:.0f} ms  (target < 2000 ms)")
        from geoservice.edge.access import catalogue

        sites_collection = catalogue(app).get("sites")
        for z in (12, 14, 16):
            x, y = tile_xy(LON0 + 0.15, LAT0 + 0.15, z)
            t, data = timed(
                lambda z=z, x=x, y=y: render_tile(
                    session, sites_collection, z, x, y, ItemsQuery(), 5000
                )
            )
            print(f"sites tile z{z}: median {t * 1000:.0f} ms, {len(data)} bytes (< 100 ms)")
        session.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
