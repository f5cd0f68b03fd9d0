"""What the routers share: the platform's services, id and paging parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Header, Path, Query, Request

from carpay.ledger.pagination import MAX_PAGE_SIZE

if TYPE_CHECKING:
    from carpay.api.app import ApiServices

__all__ = ["MAX_ID", "After", "Id", "IdempotencyKey", "Limit", "platform"]

#: The largest id a path or cursor may name: ids are 32-bit signed integers in PostgreSQL.
MAX_ID = 2**31 - 1

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="page size")]
After = Annotated[
    int | None, Query(ge=0, le=MAX_ID, description="the `next_after` of the previous page")
]

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Unique per request: a repeat with the same body gets the first answer",
    ),
]


def platform(request: Request) -> ApiServices:
    return request.app.state.platform
