"""/v1/escrows: selling a vehicle by escrow, each step from the key of the party that takes it.

For the parties' API owners only (see :mod:`carpay.services.escrows`); every POST needs an
Idempotency-Key. Follow each step at ``/v1/outbox/{id}``; ``GET /v1/escrows/{id}`` shows the
escrow as the ledger has it, and the vehicle's record (``/v1/vehicles/{vin}``) its sale.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field

from carpay.accounts.api_keys import Principal
from carpay.api.problems import problem_responses
from carpay.api.routes.common import ContractId, IdempotencyKey, platform, send_intent
from carpay.api.schemas import _ADDRESS, IntentOut, _In
from carpay.api.security import requires
from carpay.services.escrows import MAX_PRICE

router = APIRouter(tags=["vehicle sales"], responses=problem_responses(401, 403, 422, 429))
_WRITE = Depends(requires("payments:write"))


class EscrowCreate(_In):
    seller: str = Field(description="the vehicle's owner, who sells it", **_ADDRESS)
    vin: str = Field(min_length=17, max_length=17, description="the vehicle's VIN (ISO 3779)")
    buyer: str = Field(**_ADDRESS)
    token: str = Field(description="the currency token of the price", **_ADDRESS)
    price_minor: int = Field(gt=0, le=MAX_PRICE)
    deadline: int = Field(gt=0, lt=2**48, description="unix time: both sides in by then")
    arbiter: str = Field(description="who may resolve a dispute either way", **_ADDRESS)


class EscrowFund(_In):
    """The buyer pays in the price (nothing to say: the escrow names buyer and price)."""


class TitleDeposit(_In):
    payoff_minor: int = Field(0, ge=0, le=MAX_PRICE, description="a lien's signed payoff")
    valid_before: int = Field(0, ge=0, lt=2**256, description="unix time: the statement's end")
    lender_signature: str = Field(
        "0x",
        pattern="^0x([0-9a-fA-F]{2})*$",
        max_length=4098,
        description="the lender's EIP-712 LienPayoff signature (a title with a lien only)",
    )


class EscrowAction(_In):
    party: Literal["buyer", "seller"] = Field(description="who takes the step")


class EscrowOut(BaseModel):
    """An escrow as the ledger has it."""

    escrow_id: int
    title: str
    seller: str
    buyer: str
    token: str
    arbiter: str
    price: int
    deadline: int
    fee_bps: int
    state: Literal["open", "disputed", "settled", "unwound"]
    funded: bool
    deposited: bool
    lender: str | None
    payoff: int
    block_number: int
    tx_hash: str


_POST = {
    "status_code": 201,
    "response_model": IntentOut,
    "responses": problem_responses(400, 402, 404, 409, 503),
}


@router.post("/escrows", summary="Offer a vehicle for sale by escrow", **_POST)
def open_escrow(
    body: EscrowCreate,
    request: Request,
    principal: Annotated[Principal, _WRITE],
    idempotency_key: IdempotencyKey,
) -> Response:
    """The seller opens an escrow for the buyer; nothing moves yet (kind ``escrow_open``)."""
    return send_intent(
        request,
        principal,
        idempotency_key,
        body,
        IntentOut,
        lambda session: platform(request).escrows.open(
            session, owner=principal.owner, reference=idempotency_key, **body.model_dump()
        ),
    )


@router.get(
    "/escrows/{escrow_id}",
    response_model=EscrowOut,
    responses=problem_responses(404),
    summary="An escrow",
)
def get_escrow(
    escrow_id: ContractId,
    request: Request,
    _: Annotated[Principal, Depends(requires("ledger:read"))],
) -> dict:
    with platform(request).db.read() as session:
        return platform(request).escrows.get(session, escrow_id)


@router.post("/escrows/{escrow_id}/fund", summary="Pay the price into an escrow", **_POST)
def fund_escrow(
    escrow_id: ContractId,
    body: EscrowFund,
    request: Request,
    principal: Annotated[Principal, _WRITE],
    idempotency_key: IdempotencyKey,
) -> Response:
    """The buyer approves the escrow for the price and pays it in (kind ``escrow_fund``)."""
    return send_intent(
        request,
        principal,
        idempotency_key,
        body,
        IntentOut,
        lambda session: platform(request).escrows.fund(
            session, owner=principal.owner, escrow_id=escrow_id, reference=idempotency_key
        ),
    )


@router.post("/escrows/{escrow_id}/title", summary="Deposit the title into an escrow", **_POST)
def deposit_title(
    escrow_id: ContractId,
    body: TitleDeposit,
    request: Request,
    principal: Annotated[Principal, _WRITE],
    idempotency_key: IdempotencyKey,
) -> Response:
    """The seller approves the escrow for the title and moves it in (kind
    ``escrow_deposit``); a title with a lien with its lender's signed payoff statement."""
    return send_intent(
        request,
        principal,
        idempotency_key,
        body,
        IntentOut,
        lambda session: platform(request).escrows.deposit_title(
            session,
            owner=principal.owner,
            escrow_id=escrow_id,
            payoff_minor=body.payoff_minor,
            valid_before=body.valid_before,
            lender_signature=bytes.fromhex(body.lender_signature[2:]),
            reference=idempotency_key,
        ),
    )


@router.post(
    "/escrows/{escrow_id}/{action}",
    summary="Settle, dispute, cancel or reclaim an escrow",
    **_POST,
)
def act_on_escrow(
    escrow_id: ContractId,
    action: Annotated[Literal["settle", "dispute", "cancel", "reclaim"], Path()],
    body: EscrowAction,
    request: Request,
    principal: Annotated[Principal, _WRITE],
    idempotency_key: IdempotencyKey,
) -> Response:
    """A party's step (kind ``escrow_<action>``): ``settle`` swaps price and title once both
    are in; ``dispute`` leaves it to the arbiter; ``cancel`` calls it off while the other side
    is missing; ``reclaim`` takes back what each put in after the deadline."""
    return send_intent(
        request,
        principal,
        idempotency_key,
        body,
        IntentOut,
        lambda session: platform(request).escrows.act(
            session,
            owner=principal.owner,
            escrow_id=escrow_id,
            action=action,
            party=body.party,
            reference=idempotency_key,
        ),
    )
