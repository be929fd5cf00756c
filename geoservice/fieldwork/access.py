"""Area scope (geoservice.accounts.scope) applied to field work: which tasks, photos and places an
account's lists and figures cover. A 街道 planner sees its street's tasks, 到位率 and
存疑 photos, a 暗访 drawn by a street-bound supervisor samples its street only, and the
deployment-wide configuration (patrol schedules) is for accounts bound to no area."""

from __future__ import annotations

from typing import Any

from sqlalchemy import literal_column

from geoservice.accounts import scope
from geoservice.models import User
from geoservice.registry import LayerRegistry
from geoservice.service_errors import Forbidden

Fragment = tuple[str, dict[str, Any]]


def whole_deployment(account: User | None) -> bool:
    return scope.for_account(account).everything


def require_whole_deployment(account: User | None) -> None:
    if not whole_deployment(account):
        raise Forbidden("巡查计划对全辖区生效，只有不限定区域的账号可以配置")


def place_ref(account: User | None, registry: LayerRegistry, column: str) -> Fragment | None:
    """SQL condition on a column holding a place id (None: no restriction)."""
    if whole_deployment(account):
        return None
    return scope.to_sql(scope.place_ref_filter(account, registry, literal_column(column)))


def photo_checks(
    account: User | None, registry: LayerRegistry, alias: str = "c"
) -> Fragment | None:
    """SQL condition on `photo_checks <alias>`: issue photos of issues the account sees, field
    photos of places it sees."""
    s = scope.for_account(account)
    if s.everything and s.own_reports_of is None:
        return None
    issue_where, issue_params = scope.issue_sql(account, "scope_i")
    place_where, place_params = scope.to_sql(
        scope.place_ref_filter(account, registry, literal_column("scope_f.place_id"))
    )
    sql = (
        f"(({alias}.photo_id IS NOT NULL AND EXISTS (SELECT 1 FROM photos scope_p"
        f" JOIN issues scope_i ON scope_i.id = scope_p.issue_id"
        f" WHERE scope_p.id = {alias}.photo_id AND {issue_where}))"
        f" OR ({alias}.field_photo_id IS NOT NULL AND EXISTS (SELECT 1 FROM field_photos scope_f"
        f" WHERE scope_f.id = {alias}.field_photo_id AND {place_where})))"
    )
    return sql, {**issue_params, **place_params}
