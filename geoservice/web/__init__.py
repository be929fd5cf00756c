"""HTML pages (Chinese UI): blueprint `bp`."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("web", __name__, template_folder="templates")


from geoservice.web import (  # noqa: E402, F401  (register pages)
    home,
    issues,
    maps,
    rankings,
    responsibility,
)
