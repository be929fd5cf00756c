"""The issues collection as the edges see it: the caller's rights on it, the issue settings
of this deployment, where a photo is served (the API serves photos; pages link there)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, g, has_request_context, request, url_for

from geoservice.accounts.auth import can
from geoservice.db import get_session
from geoservice.issues.workflow import IssueSettings
from geoservice.ranking import vocabularies

COLLECTION = "issues"  # token scopes may name it: "issues.report:issues"


def settings() -> IssueSettings:
    """The configuration, with the category time limits in force now
    (geoservice.ranking.vocabularies); read once per request (a report asks for it three
    times: validation, creation, the view)."""
    if not has_request_context():
        return vocabularies.issue_settings(get_session(), current_app.config, datetime.now(UTC))
    current = request._get_current_object()  # g may outlive one request (a test's app context)
    cached = g.get("_issue_settings")
    if cached is None or cached[0] is not current:
        found = vocabularies.issue_settings(get_session(), current_app.config, datetime.now(UTC))
        cached = g._issue_settings = (current, found)
    return cached[1]


def photo_url(photo_id: int, thumb: bool) -> str:
    return url_for("api.issue_photo", photo_id=photo_id, thumb=1 if thumb else None)


def allows(action: str) -> bool:
    """The caller's permissions (role and token scopes) on the issues collection."""
    return can(action, COLLECTION)
