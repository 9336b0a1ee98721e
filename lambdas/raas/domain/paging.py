"""Walking a cursor-paged listing to its end (every store's list methods page this way)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

Page = tuple[list[T], str | None]


def all_items(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of a listing: `fetch(cursor)` returns (items, next cursor or None)."""
    cursor: str | None = None
    while True:
        items, cursor = fetch(cursor)
        yield from items
        if cursor is None:
            return
