"""Who may do what: the one permission table (role → actions), and token scopes.

An *action* is `<family>.<verb>` (e.g. `layers.write`). Every endpoint declares the action
it needs with `geoservice.accounts.auth.permission_required(action)`; this module decides.

An API token may carry *scopes*, a list of strings that narrow what the owner's role allows:

- `"layers.read"`          the action, for every collection
- `"layers.read:grids"`    the action, for one collection only (collection ids of the layer
                           registry, or `issues`)
- `"*"`                    everything the role allows (same as no scopes)

Asking with `collection=None` means "may the caller do this action on nothing in particular"
(admin areas, the whole deployment): it needs a grant for every collection, so a token scoped
to `layers.write:roads` cannot import admin areas. An endpoint spanning several collections
(the catalogue, a search over every layer) asks with `collection=ANY_COLLECTION` ("on some
collection") and then filters each collection with `can(action, collection)`. An endpoint
serving one collection must name it.

A token without scopes (`None`) may do everything its owner's role may do, except for the
`integration` role: an integration token does only what its scopes list. Scopes never
widen a role: the result is always role ∩ scopes.

Visibility of *data* (which places and issues an account sees) is a separate question,
answered by `geoservice.accounts.scope`.
"""

from __future__ import annotations

from collections.abc import Iterable

# Every action, with the Chinese label shown on the admin pages.
ACTIONS: dict[str, str] = {
    "layers.read": "查看图层要素",
    "layers.write": "编辑、导入图层要素",
    "areas.write": "导入、修改行政区划边界",
    "assignments.read": "查看包保责任",
    "assignments.write": "调整包保责任（领导、单位、责任分配）",
    "issues.read": "查看问题",
    "issues.report": "上报问题",
    "issues.set_report_meta": "上报时设定严重程度、负面清单或补录上报时间",
    "issues.dispatch": "立案、交办问题",
    "issues.verify": "复核、销号问题",
    "issues.fix": "反馈整改（自己负责的问题）",
    "rankings.read": "查看排名与通报",
    "rankings.publish": "发布通报（冻结存档）",
    "users.admin": "管理账号",
    "audit.read": "查看操作日志",
    "notifications.admin": "管理消息通知（渠道、死信、回单地址）",
    "rules.admin": "调整考核规则与词表（权重、达标线、后N名、类别时限）",
    # Field work (issue 16, geoservice/fieldwork/).
    "patrols.plan": "配置巡查计划、查看逾期巡查任务",
    "patrols.visit": "巡查打卡（自己的巡查任务）",
    "inspections.run": "暗访督查（抽样、记录结果、完成暗访）",
    "evidence.read": "查看照片存疑清单",
}

# The permission table. `admin` is listed for completeness: it may do everything.
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(ACTIONS),
    "planner": frozenset(
        {
            "layers.read",
            "layers.write",
            "areas.write",
            "assignments.read",
            "assignments.write",
            "issues.read",
            "issues.report",
            "issues.set_report_meta",
            "issues.dispatch",
            "issues.verify",
            "issues.fix",
            "rankings.read",
            "rankings.publish",
            "patrols.plan",
            "patrols.visit",
            "inspections.run",
            "evidence.read",
        }
    ),
    "leader": frozenset(
        {
            "layers.read",
            "assignments.read",
            "issues.read",
            "issues.report",
            "issues.fix",
            "rankings.read",
            "patrols.visit",
        }
    ),
    "inspector": frozenset(
        {"layers.read", "issues.read", "issues.report", "inspections.run", "evidence.read"}
    ),
    "viewer": frozenset({"layers.read", "assignments.read", "issues.read", "rankings.read"}),
    "integration": frozenset(
        {
            "layers.read",
            "layers.write",
            "assignments.read",
            "issues.read",
            "issues.report",
            "issues.set_report_meta",  # only for a token whose scopes list it
            "rankings.read",
        }
    ),
}

# Roles that sign in with a password (integration accounts use API tokens only).
INTERACTIVE_ROLES: frozenset[str] = frozenset(ROLE_ACTIONS) - {"integration"}

ROLE_LABELS: dict[str, str] = {
    "admin": "系统管理员",
    "planner": "创文办（业务管理）",
    "leader": "包保领导",
    "inspector": "督查员",
    "viewer": "只读查看",
    "integration": "系统对接（仅令牌）",
}


# `collection` for a check "on some collection" (a catalogue that filters each one after).
ANY_COLLECTION = "\x00any"


class ScopeSyntaxError(ValueError):
    pass


def parse_scope(scope: str) -> tuple[str, str | None]:
    """`"layers.read:grids"` → ("layers.read", "grids"); raises ScopeSyntaxError if unknown."""
    if scope == "*":
        return "*", None
    action, _, collection = scope.partition(":")
    if action not in ACTIONS:
        raise ScopeSyntaxError(f"未知权限 {action!r}，可选：{', '.join(ACTIONS)}")
    if ":" in scope and not collection:
        raise ScopeSyntaxError(f"权限 {scope!r} 的集合名为空")
    return action, collection or None


def validate_scopes(scopes: Iterable[str]) -> list[str]:
    out = []
    for scope in scopes:
        parse_scope(scope)
        out.append(scope)
    return out


def role_allows(role: str, action: str) -> bool:
    if action not in ACTIONS:
        raise KeyError(
            f"unknown action {action!r}: add it to geoservice.accounts.permissions.ACTIONS"
        )
    return action in ROLE_ACTIONS.get(role, frozenset())


def scopes_allow(scopes: Iterable[str], action: str, collection: str | None) -> bool:
    for scope in scopes:
        granted, granted_collection = parse_scope(scope)
        if granted == "*":
            return True
        if granted != action:
            continue
        if granted_collection is None:
            return True
        if collection is None:  # names no collection: only an unscoped grant will do
            continue
        if collection == ANY_COLLECTION or granted_collection == collection:
            return True
    return False


def allowed(
    role: str,
    action: str,
    collection: str | None = None,
    token_scopes: list[str] | None = None,
    via_token: bool = False,
) -> bool:
    """May an account of `role` do `action` (on `collection`)?

    `via_token`/`token_scopes`: the call came with an API token carrying these scopes.
    """
    if not role_allows(role, action):
        return False
    if via_token and token_scopes is None:
        return role != "integration"
    if token_scopes is not None:
        return scopes_allow(token_scopes, action, collection)
    return True


def actions_for(
    role: str, token_scopes: list[str] | None = None, via_token: bool = False
) -> list[str]:
    """The actions (without collection narrowing) an account may use at all."""
    out = []
    for action in ACTIONS:
        if not role_allows(role, action):
            continue
        if via_token and token_scopes is None and role == "integration":
            continue
        if token_scopes is not None and not any(
            parse_scope(s)[0] in ("*", action) for s in token_scopes
        ):
            continue
        out.append(action)
    return out
