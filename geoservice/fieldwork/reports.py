"""Issues reported from the field app outside a visit: the ordinary report (validation,
attribution, photos) with an idempotency key per phone record, so a report the phone sends
again — its answer was lost, or it was queued offline and retried — is stored once. Same key
and content → the first issue; same key and other content → 409.

The issue is reported when it reaches the server (backdating is `issues.set_report_meta`'s, as
for any report); the time the phone recorded it is kept with the record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from geoservice.fieldwork.common import as_time
from geoservice.fieldwork.models import FieldReport
from geoservice.fieldwork.patrol_visits import idempotency_key, visit_fingerprint
from geoservice.issues import issues as issue_service
from geoservice.issues.photos import PreparedPhoto, Upload
from geoservice.issues.workflow import IssueSettings
from geoservice.models import Issue, User
from geoservice.registry import LayerRegistry
from geoservice.service_errors import Conflict, InvalidInput

OWN_FIELDS = ("idempotency_key", "recorded_at")


@dataclass
class ReportResult:
    issue: Issue
    created: bool


def replay(session: Session, user_id: int, key: str, fingerprint: str) -> FieldReport | None:
    first = session.scalar(
        select(FieldReport).where(
            FieldReport.user_id == user_id, FieldReport.idempotency_key == key
        )
    )
    if first is None:
        return None
    if first.content_sha256 != fingerprint:
        raise Conflict(
            "该幂等键（idempotency_key）已用于另一条不同内容的上报",
            {"issue_id": first.issue_id},
            "idempotency_key",
        )
    return first


def parse(fields: Mapping[str, Any], uploads: Sequence[Upload]) -> tuple[str, str]:
    """(key, fingerprint) of a submission; the key is required."""
    key = idempotency_key(fields.get("idempotency_key"))
    if key is None:
        raise InvalidInput("缺少幂等键 idempotency_key（每条记录一个）", field="idempotency_key")
    return key, visit_fingerprint(fields, uploads)


def validate(
    fields: Mapping[str, Any], settings: IssueSettings, source: str, now: datetime
) -> issue_service.Report:
    """The report's fields (the field app's source unless one of the vocabulary is given)."""
    report_fields = {k: v for k, v in fields.items() if k not in OWN_FIELDS}
    report_fields.setdefault("source", source)
    return issue_service.validate_report(report_fields, settings, now)


def submit(
    session: Session,
    registry: LayerRegistry,
    settings: IssueSettings,
    account: User,
    report: issue_service.Report,
    key: str,
    fingerprint: str,
    recorded_at: Any,
    prepared: Sequence[PreparedPhoto],
    now: datetime | None = None,
) -> ReportResult:
    now = now or datetime.now(UTC)
    recorded = as_time(recorded_at, "recorded_at", "记录时间") if recorded_at else None
    issue = issue_service.create_issue(session, registry, settings, report, account, prepared, now)
    session.add(
        FieldReport(
            user_id=account.id,
            idempotency_key=key,
            content_sha256=fingerprint,
            issue_id=issue.id,
            recorded_at=recorded,
        )
    )
    session.flush()
    return ReportResult(issue, created=True)
