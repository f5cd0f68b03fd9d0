"""POST/GET /v1/transfers: send ether or a token; every POST needs an Idempotency-Key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from carpay.accounts.api_keys import Principal
from carpay.api.idempotency import idempotent
from carpay.api.problems import problem_responses
from carpay.api.routes.common import After, Id, IdempotencyKey, Limit, platform
from carpay.api.schemas import List, TransferCreate, TransferOut, page_of
from carpay.api.security import requires

router = APIRouter(tags=["transfers"], responses=problem_responses(401, 403, 422, 429))


@router.post(
    "/transfers",
    status_code=201,
    response_model=TransferOut,
    responses=problem_responses(400, 409),
    summary="Request a transfer",
)
def create_transfer(
    body: TransferCreate,
    request: Request,
    principal: Annotated[Principal, Depends(requires("transfers:write"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    """Promise to send ``amount_minor`` to ``to``; the relayer sends it, exactly once."""
    transfers = platform(request).transfers
    return idempotent(
        request,
        principal,
        idempotency_key,
        body,
        lambda session: TransferOut.of(
            transfers.request(
                session,
                owner=principal.owner,
                to=body.to,
                amount_minor=body.amount_minor,
                token=body.token,
                reference=idempotency_key,
            )
        ),
        model=TransferOut,
    )


@router.get("/transfers", response_model=List[TransferOut], summary="List transfers")
def list_transfers(
    request: Request,
    principal: Annotated[Principal, Depends(requires("transfers:read"))],
    limit: Limit = 50,
    after: After = None,
) -> dict:
    p = platform(request)
    with p.db.read() as session:
        page = p.transfers.list(session, owner=principal.owner, limit=limit, after=after)
        return page_of(page, TransferOut.of)


@router.get(
    "/transfers/{transfer_id}",
    response_model=TransferOut,
    responses=problem_responses(404),
    summary="Get a transfer",
)
def get_transfer(
    transfer_id: Id,
    request: Request,
    principal: Annotated[Principal, Depends(requires("transfers:read"))],
) -> dict:
    p = platform(request)
    with p.db.read() as session:
        return TransferOut.of(p.transfers.get(session, transfer_id, owner=principal.owner))
