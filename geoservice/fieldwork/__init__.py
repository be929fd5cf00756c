"""Field work (issue 16): patrol schedules and tasks, visits with proof, unannounced
inspections (暗访), photo evidence checks and the watermarked display copy.

Services are plain functions taking a session; the edges are geoservice/api/fieldwork.py
(JSON under /api/fieldwork) and geoservice/web/field.py (the /field app and the 存疑 page).

Every patrol works on any place (rows of `places`, whatever their layer) and the 包保
assignments held by role, so sites (点位, issue 15) take part as soon as their layer exists.

May import: assessment, citizens, issues, responsibility, areas, catalogue, accounts,
plumbing; never ranking or an edge. Contracts: .importlinter.
"""

from __future__ import annotations


def init_app(app) -> None:
    """Checks issue photos as evidence when they are uploaded (a hook on session commits)."""
    from geoservice.fieldwork import evidence

    evidence.install()
