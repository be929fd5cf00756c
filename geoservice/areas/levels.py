"""Admin levels (市 → 区/县 → 街道/镇 → 社区/村) and their codes.

Codes follow GB/T 2260 (city, district, county: 6 digits), the street/town code of
GB/T 10114 (9 digits: county + 3) and the community/village code (12 digits: street + 3);
a grid code (GB/T 30428) is the community code + 3 digits (15). A child's code starts with
its parent's code, which is how the hierarchy can be read from codes alone (a city's code,
e.g. 320500, contributes its first 4 digits).

Some cities number their areas with a local scheme instead (e.g. 杭州下城区: street `SQ`,
community `SQ-3`, grid `TS-3-3`). Such *local codes* are accepted only when asked for
(`--local-codes`); a local code names its parent by the part before its last separator
(`-`, `_` or `.`).
"""

from __future__ import annotations

from collections.abc import Container, Iterable

from geoservice.registry import LOCAL_CODE

LEVELS = ("city", "district", "county", "street", "community")
LEVEL_TITLES = {
    "city": "市",
    "district": "区",
    "county": "县",
    "street": "街道/镇",
    "community": "社区/村",
}
# Higher rank = higher in the hierarchy; district and county are the same rank (区 / 县).
RANK = {"city": 4, "district": 3, "county": 3, "street": 2, "community": 1}
CODE_LENGTH = {"city": 6, "district": 6, "county": 6, "street": 9, "community": 12}
SEPARATORS = "-_."
CODE_RULE = "市、区、县 6 位（GB/T 2260），街道/镇 9 位，社区/村 12 位，网格 15 位（GB/T 30428）"


def levels_of_rank(rank: int) -> tuple[str, ...]:
    return tuple(level for level in LEVELS if RANK[level] == rank)


def is_standard(level: str, code: str) -> bool:
    """A GB/T code of the right length for the level."""
    return code.isdigit() and len(code) == CODE_LENGTH[level] and code.isascii()


def code_problem(level: str, code: str, local: bool = False) -> str | None:
    """Why `code` cannot be an area code at `level` (Chinese), or None."""
    if is_standard(level, code):
        return None
    if local:
        if LOCAL_CODE.fullmatch(code):
            return None
        return (
            f"代码 {code!r} 不符合本地编码格式：1–15 位字母、数字，可用 - _ . 分隔，"
            "以字母或数字开头"
        )
    want = CODE_LENGTH[level]
    if code.isdigit() and code.isascii():
        return (
            f"{LEVEL_TITLES[level]}代码应为 {want} 位数字，{code!r} 为 {len(code)} 位"
            f"（{CODE_RULE}）"
        )
    return (
        f"{LEVEL_TITLES[level]}代码应为 {want} 位数字，{code!r} 含非数字字符；"
        "本地编码（如 SQ-3）请勾选本地编码（接口 local_codes=true，命令行 --local-codes）"
    )


def normalise_code(value: object) -> str | None:
    """A code as read from a file (text, or a number from a DBF column) → text, or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not value.is_integer():
            return str(value)
        value = int(value)
    text = str(value).strip()
    return text or None


def code_prefix(code: str, parent_level: str) -> str | None:
    """The parent code a GB/T code names at `parent_level`, e.g. ("320505006015", "street")
    → "320505006"; None when the code is not a longer digit code."""
    if not (code.isdigit() and code.isascii()):
        return None
    if parent_level == "city":
        return code[:4] + "00" if len(code) > 6 else None
    length = CODE_LENGTH[parent_level]
    return code[:length] if len(code) > length else None


def local_prefixes(code: str) -> list[str]:
    """The parts of a local code before each separator, longest first: TS-3-3 → [TS-3, TS]."""
    return [code[:i] for i in range(len(code) - 1, 0, -1) if code[i] in SEPARATORS]


def claimed_parent(
    code: str, parent_levels: Iterable[str], parent_codes: Container[str]
) -> str | None:
    """The parent code that `code` names.

    A GB/T code names the prefix of the parent level's length, whether or not that parent
    exists (a missing one is a finding). A local code names the longest part before a
    separator that is an existing parent's code; otherwise it names none (codes such as
    `grid-roads-00001`, generated on import, say nothing about a parent)."""
    for level in parent_levels:
        prefix = code_prefix(code, level)
        if prefix is not None:
            return prefix
    return next((p for p in local_prefixes(code) if p in parent_codes), None)
