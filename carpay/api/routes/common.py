"""What the routers share: the platform's services, id and paging parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Header, Path, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from carpay.accounts.api_keys import Principal
from carpay.api.idempotency import idempotent
from carpay.ledger.models import OutboxIntent
from carpay.ledger.pagination import MAX_PAGE_SIZE

if TYPE_CHECKING:
    from carpay.api.app import ApiServices
    from carpay.api.schemas import IntentOut

__all__ = [
    "MAX_ID",
    "After",
    "ContractId",
    "Id",
    "IdempotencyKey",
    "Limit",
    "platform",
    "send_intent",
]

#: The largest id a path or cursor may name: ids are 32-bit signed integers in PostgreSQL.
MAX_ID = 2**31 - 1

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
#: An id a contract gave (a fine's, a policy's, an escrow's): a uint256 above zero.
ContractId = Annotated[int, Path(ge=1, lt=2**256)]
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


def send_intent(
    request: Request,
    principal: Principal,
    key: str,
    body: BaseModel,
    model: type[IntentOut],
    write: Callable[[Session], OutboxIntent],
) -> Response:
    """Answer a POST that writes an intent: ``write(session)`` runs once per Idempotency-Key
    (see :func:`carpay.api.idempotency.idempotent`), and its intent is rendered as ``model``."""
    return idempotent(
        request, principal, key, body, lambda session: model.of(write(session)), model=model
    )
