"""Screenshots of the map pages in headless Chromium, offline (no request leaves 127.0.0.1):
the planner's map, a leader's 我的包保 map and the big screen.

    DATABASE_URL=… .venv/bin/python scripts/map_screenshots.py [OUT_DIR]

Runs the app on 127.0.0.1 in this process against DATABASE_URL (the demo county: `flask
seed-demo`), creates two accounts if missing (map_demo_planner; map_demo_leader, bound to the
leader with the most places) with a fresh random password, signs in through /login and writes
map-planner.png, map-leader.png and screen.png (default OUT_DIR: docs/screenshots).
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from geoservice import create_app  # noqa: E402
from geoservice.accounts.accounts import create_user, set_password, user_by_name  # noqa: E402
from geoservice.config import config_from_env  # noqa: E402
from geoservice.db import database  # noqa: E402
from tests.browser import Browser, serve  # noqa: E402

SHOTS = [
    # (file, account, path, window size, what must have drawn)
    (
        "map-planner.png",
        "map_demo_planner",
        "/map?layers=grids,roads,markets,compounds,issues&theme=community:open",
        (1600, 1000),
        "gsMap.features.issues > 0 && gsMap.tiles.theme > 0",
    ),
    (
        "map-leader.png",
        "map_demo_leader",
        "/map?mine=1",
        (1600, 1000),
        "gsMap.features.issues > 0 && (gsMap.features.grids > 0 || gsMap.features.roads > 0)",
    ),
    (
        "screen.png",
        "map_demo_planner",
        "/screen",
        (1920, 1080),
        "window.gsScreen && gsMap.features.issues > 0 && gsMap.tiles.theme > 0",
    ),
]


def ensure_accounts(app, password: str) -> None:
    with app.app_context():
        session = database(app).session()
        leader_id = session.execute(
            text(
                "SELECT leader_id FROM assignments WHERE valid_to IS NULL"
                " GROUP BY leader_id ORDER BY count(*) DESC, leader_id LIMIT 1"
            )
        ).scalar_one()
        for username, role, leader in (
            ("map_demo_planner", "planner", None),
            ("map_demo_leader", "leader", leader_id),
        ):
            user = user_by_name(session, username)
            if user is None:
                create_user(session, username, role, password, leader_id=leader)
            else:
                set_password(session, user, password)
        session.commit()
        session.close()


def main(out_dir: str = "docs/screenshots") -> None:
    config = config_from_env(os.environ)
    config.update(SESSION_COOKIE_SECURE=False, REMEMBER_COOKIE_SECURE=False)
    config.setdefault("SECRET_KEY", secrets.token_hex(16))
    app = create_app(config)
    password = "Map-" + secrets.token_urlsafe(12)
    ensure_accounts(app, password)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with serve(app) as base:
        for name, username, path, size, drawn in SHOTS:
            with Browser.launch(size=size) as browser:
                page = browser.new_page(size=size)
                page.sign_in(base, username, password)
                page.goto(base + path)
                page.wait_for(f"window.gsMap && {drawn}", timeout=120)
                time.sleep(2)  # let the last tiles and the heat/legend paint
                outside = [u for u in page.requests if not u.startswith((base, "data:", "blob:"))]
                if outside or page.exceptions:
                    raise SystemExit(f"{path}: outside requests {outside}, {page.exceptions}")
                page.screenshot(out / name)
                print(f"{out / name}: {len(page.requests)} requests, all to 127.0.0.1")


if __name__ == "__main__":
    main(*sys.argv[1:])
