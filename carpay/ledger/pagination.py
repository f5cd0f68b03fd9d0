"""Keyset pagination: pages that stay right while rows are added, at any depth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session

__all__ = ["MAX_PAGE_SIZE", "Page", "paginate"]

T = TypeVar("T")

#: The largest page anyone may ask for.
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    """Rows of one page, newest first, and the key after which the next page starts."""

    items: list[T]
    next_after: int | None

    @property
    def has_more(self) -> bool:
        return self.next_after is not None


def paginate(
    session: Session,
    stmt: sa.Select[Any],
    key: InstrumentedAttribute[int],
    *,
    limit: int,
    after: int | None = None,
) -> Page[Any]:
    """One page of ``stmt``'s rows in descending ``key`` order, those below ``after``.

    ``key`` must be unique and increasing with insertion (a primary key).
    """
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    if after is not None:
        stmt = stmt.where(key < after)
    rows = list(session.scalars(stmt.order_by(key.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_after = getattr(rows[-1], key.key) if more and rows else None
    return Page(rows, next_after)
