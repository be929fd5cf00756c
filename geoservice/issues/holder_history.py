"""Who held an issue, with which deadline, at every moment: recorded on its events.

Every event that changes an issue's leader, unit or deadline (交办, 改派, 延期批准, 退回确权,
reattribution, attribution correction) records the values before and after it
(`IssueEvent.prev_*` and `IssueEvent.leader_id/unit_id/deadline`, `holder_change`), and
`Issue.holder_since` is the moment of the last such change. The rankings read the values in
force at a period's end from there (geoservice.ranking), so a later move never rewrites a
closed period.
"""

from __future__ import annotations

from datetime import datetime

from geoservice.models import Issue, IssueEvent

Holder = tuple[int | None, int | None, datetime | None]


def holder_of(issue: Issue) -> Holder:
    """(leader_id, unit_id, deadline) of the issue now."""
    return (issue.leader_id, issue.unit_id, issue.deadline)


def stamp(event: IssueEvent, issue: Issue, before: Holder) -> bool:
    """Records the issue's holder on `event` (after the move) and, when leader, unit or deadline
    changed from `before`, the values before it; bumps `issue.holder_since`. True if changed."""
    event.leader_id, event.unit_id, event.deadline = holder_of(issue)
    changed = holder_of(issue) != before
    event.holder_change = changed
    if changed:
        event.prev_leader_id, event.prev_unit_id, event.prev_deadline = before
        # The latest change wins even if an event is entered with an earlier date.
        issue.holder_since = max(filter(None, (issue.holder_since, event.at)))
    return changed
