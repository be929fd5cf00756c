"""The flask commands (`flask --app wsgi …`), one module per subject; each registers its own.

An edge: may import geoservice.edge, every domain package (demo too), plumbing; never api or web.
"""

from __future__ import annotations

from flask import Flask

from geoservice.cli import (
    areas,
    database,
    demo,
    issues,
    layers,
    notifications,
    rankings,
    reports,
    responsibility,
    users,
)


def init_app(app: Flask) -> None:
    modules = (
        database,
        demo,
        users,
        issues,
        layers,
        reports,
        rankings,
        responsibility,
        areas,
        notifications,
    )
    for module in modules:
        module.init_app(app)
