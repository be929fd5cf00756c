"""Lists shown a page at a time (a city's run to tens of thousands of rows): the `page`
argument of the request and what a page of `size` rows out of `total` covers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from flask import request

MAX_PAGE = 100_000  # past the last page the list is simply empty; no offset overflows
T = TypeVar("T")


def requested_page() -> int:
    """The request's `page` (1 when absent, not a number or out of range)."""
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < MAX_PAGE else 1


@dataclass(frozen=True)
class Page:
    number: int
    size: int
    total: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def first(self) -> int:
        """The 1-based position of the page's first row."""
        return self.offset + 1

    @property
    def pages(self) -> int:
        return -(-self.total // self.size)

    def of(self, rows: Sequence[T]) -> list[T]:
        """This page's rows of the whole list `rows`."""
        return list(rows[self.offset : self.offset + self.size])
