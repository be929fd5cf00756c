"""HTML pages (Chinese UI): blueprint `bp`. An edge: parse the request, call a service, render
a template; the front-end assets it serves (assets.py) and the folium map pieces.

May import: geoservice.edge, every domain package, plumbing; never api or cli."""

from __future__ import annotations

from flask import Blueprint

from geoservice.issues.workflow import is_overdue

bp = Blueprint("web", __name__, template_folder="templates")
bp.add_app_template_global(is_overdue)


from geoservice.web import (  # noqa: E402, F401  (register pages)
    coverage,
    home,
    issues,
    maps,
    publications,
    rankings,
    responsibility,
    rules_admin,
)
