"""Screenshots of pages in headless Chromium, signed in with an API token.

    DATABASE_URL=… .venv/bin/python scripts/screenshot.py TOKEN OUT.png /rankings?from=2026-W47

The app runs on 127.0.0.1 in this process; a WSGI wrapper adds `Authorization: Bearer TOKEN`
to every request (page, fetch() calls and assets), since headless Chromium cannot send it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from werkzeug.serving import make_server

from geoservice import create_app
from geoservice.config import config_from_env


def main(token: str, out: str, path: str, size: str = "1500,1900") -> None:
    app = create_app(config_from_env(os.environ))
    inner = app.wsgi_app

    def with_token(environ, start_response):
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        return inner(environ, start_response)

    app.wsgi_app = with_token
    server = make_server("127.0.0.1", int(os.environ.get("PORT", "5016")), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run(
                [
                    "chromium",
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--no-first-run",
                    "--disable-sync",
                    "--hide-scrollbars",
                    f"--user-data-dir={profile}",
                    f"--window-size={size}",
                    "--virtual-time-budget=15000",
                    f"--screenshot={os.path.abspath(out)}",
                    f"http://127.0.0.1:{server.server_port}{path}",
                ],
                check=True,
                timeout=120,
            )
    finally:
        server.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
