"""HTML pages (Chinese UI): blueprint `bp`."""

from __future__ import annotations

from flask import Blueprint

from geoservice.issues.workflow import is_overdue

bp = Blueprint("web", __name__, template_folder="templates")
bp.add_app_template_global(is_overdue)


from geoservice.web import (  # noqa: E402, F401  (register pages)
    home,
    issues,
    maps,
    rankings,
    responsibility,
)
