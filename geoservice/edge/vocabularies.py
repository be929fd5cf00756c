"""The vocabularies in force now (geoservice.rules), read once per request: the issue sources,
categories in use, leader levels and 包保 roles every write checks and every form offers."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from sqlalchemy import text

from geoservice import rules
from geoservice.db import get_session


def in_force() -> rules.Vocabularies:
    """The lists in force at this request's moment (one query, cached on the request)."""
    cached = g.get("_vocabularies")
    if cached is None:
        cached = rules.vocabularies(get_session(), current_app.config, rules.now())
        g._vocabularies = cached
    return cached


def config_in_force() -> dict[str, Any]:
    """The app configuration with the vocabularies in force now in place of the defaults (for
    the builders that read a configuration, e.g. the OpenAPI document's enums)."""
    from geoservice.edge.issues import settings

    config = dict(current_app.config)
    vocab = in_force()
    config["ISSUE_CATEGORIES"] = dict(settings().categories)
    config["ISSUE_SOURCES"] = list(vocab.sources)
    config["LEADER_LEVELS"] = list(vocab.levels)
    config["ASSIGNMENT_ROLES"] = list(vocab.roles)
    return config


def filter_choices() -> tuple[list[str], list[str]]:
    """The categories and sources a filter offers: those in force and the retired ones old
    issues may carry (in force first)."""
    from geoservice.edge.issues import settings

    issue = settings()
    categories = [*issue.categories, *issue.retired_categories]
    session = get_session()
    sources = list(issue.sources)
    sources += [
        s
        for s in rules.ever_used(session, current_app.config, "issue_sources", rules.now())
        if s not in sources
    ]
    return categories, sources


def unknown_issue_names(column: str, names: list[str]) -> list[str]:
    """Of `names` given to the issues' `category` or `source` filter, those no vocabulary has
    known (in force or retired) and no issue carries: a typo, not an old value."""
    categories, sources = filter_choices()
    known = set(categories if column == "category" else sources)
    unknown = [n for n in names if n not in known]
    if not unknown:
        return []
    rows = get_session().execute(
        text(
            f"SELECT n FROM unnest(CAST(:names AS text[])) n"
            f" WHERE NOT EXISTS (SELECT 1 FROM issues WHERE {column} = n)"
        ),
        {"names": unknown},
    )
    return [r[0] for r in rows]


def retired_levels() -> list[str]:
    """Leader levels no longer in force that leaders may still have."""
    vocab = in_force()
    return rules.retired(get_session(), current_app.config, "leader_levels", vocab.at, vocab.levels)


def assignable_roles() -> tuple[str, ...]:
    """The 包保 roles a new assignment may take now: those in force, less any a planned change
    removes (an assignment made today must not hold a role that a change already decided
    retires: removing a role in use is refused, so it is not handed out meanwhile)."""
    vocab = in_force()
    leaving = rules.planned_removals(get_session(), "assignment_roles", vocab.at, vocab.roles)
    return tuple(r for r in vocab.roles if r not in leaving)
