"""Choices typed into a page's one list (<datalist>) instead of picked from a <select> on
every form: a city has thousands of leaders and areas. A list entry ends with " #<number or
code>" (e.g. "罗丽（城北街道办事处） #12"); a bare number or code is taken as it is."""

from __future__ import annotations

import re

_TAIL = re.compile(r"#\s*([0-9A-Za-z_-]+)\s*$")


class NotInList(ValueError):
    """Text that names no entry of the list (a name typed but not picked)."""


def picked(value: str | None) -> str:
    """What an entry names: the part after its final '#', else the whole text; '' if empty."""
    text = (value or "").strip()
    found = _TAIL.search(text)
    return found.group(1) if found else text


def picked_number(value: str | None, what: str) -> int | None:
    """The number an entry names (None when empty); NotInList, with a message for the page,
    when the text is not an entry of the list of `what` (e.g. 领导)."""
    text = picked(value)
    if not text:
        return None
    if not text.isdigit():
        raise NotInList(
            f"“{(value or '').strip()}”不是列表中的{what}：请输入名称后在下拉列表中点选"
        )
    return int(text)
