"""The merchant's side of checkout over HTTP: refunds, and captures and voids of holds.

Sent from the merchant's own key, for the merchant's API owner only (see
:mod:`carpay.services.merchant_checkout`); every POST needs an Idempotency-Key. Follow each at
``/v1/outbox/{id}``; ``refund.succeeded``, ``hold.captured`` and ``hold.released`` follow
from the ledger.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import Field

from carpay.accounts.api_keys import Principal
from carpay.api.idempotency import idempotent
from carpay.api.problems import problem_responses
from carpay.api.routes.common import IdempotencyKey, platform
from carpay.api.routes.payments import HoldIn, InvoiceIn
from carpay.api.schemas import IntentOut, _In
from carpay.api.security import requires
from carpay.errors import ValidationFailed
from carpay.services import checkout as svc

router = APIRouter(tags=["payments"], responses=problem_responses(401, 403, 422, 429))

HoldId = Annotated[str, Path(pattern="^0x[0-9a-fA-F]{64}$", description="the hold's id")]


class RefundCreate(_In):
    invoice: InvoiceIn = Field(description="the paid invoice, exactly as it was signed")
    amount_minor: int = Field(gt=0, lt=2**256)


class CaptureCreate(_In):
    hold: HoldIn = Field(description="the hold, exactly as its payer signed it")
    amount_minor: int = Field(gt=0, lt=2**256)
    final: bool = Field(False, description="close the hold: the rest goes back to the payer")


class VoidCreate(_In):
    hold: HoldIn


class MerchantActionOut(IntentOut):
    """A refund, capture or void: an intent of kind ``refund``, ``capture`` or ``void``, sent
    from the merchant's key."""

    target: str
    amount_minor: int | None = None


def _hold(hold_id: str, body: HoldIn) -> svc.Hold:
    hold = svc.Hold(**body.model_dump())
    if "0x" + hold.checked().struct_hash().hex() != hold_id.lower():
        raise ValidationFailed(
            "the hold does not have this id", errors=[{"loc": ["hold"], "msg": "another hold"}]
        )
    return hold


def _send(request: Request, principal: Principal, key: str, body: Any, action) -> Response:
    service = platform(request).merchant_checkout
    return idempotent(
        request,
        principal,
        key,
        body,
        lambda session: MerchantActionOut.of(action(service, session)),
        model=MerchantActionOut,
    )


@router.post(
    "/refunds",
    status_code=201,
    response_model=MerchantActionOut,
    responses=problem_responses(400, 402, 409, 503),
    summary="Refund a paid invoice",
)
def create_refund(
    body: RefundCreate,
    request: Request,
    principal: Annotated[Principal, Depends(requires("payments:write"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    """Refund part or all of a paid invoice to its payer, from the merchant's balance (never
    more than was paid less what was refunded)."""
    return _send(
        request,
        principal,
        idempotency_key,
        body,
        lambda service, session: service.refund(
            session,
            owner=principal.owner,
            invoice=svc.Invoice(**body.invoice.model_dump()),
            amount_minor=body.amount_minor,
            reference=idempotency_key,
        ),
    )


@router.post(
    "/holds/{hold_id}/capture",
    status_code=201,
    response_model=MerchantActionOut,
    responses=problem_responses(400, 409, 503),
    summary="Capture a hold",
)
def capture_hold(
    hold_id: HoldId,
    body: CaptureCreate,
    request: Request,
    principal: Annotated[Principal, Depends(requires("payments:write"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    """Take up to what the hold still holds; a ``final`` capture returns the rest at once."""
    hold = _hold(hold_id, body.hold)
    return _send(
        request,
        principal,
        idempotency_key,
        body,
        lambda service, session: service.capture(
            session,
            owner=principal.owner,
            hold=hold,
            amount_minor=body.amount_minor,
            final=body.final,
            reference=idempotency_key,
        ),
    )


@router.post(
    "/holds/{hold_id}/void",
    status_code=201,
    response_model=MerchantActionOut,
    responses=problem_responses(400, 409, 503),
    summary="Void a hold",
)
def void_hold(
    hold_id: HoldId,
    body: VoidCreate,
    request: Request,
    principal: Annotated[Principal, Depends(requires("payments:write"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    """Give the whole of what the hold still holds back to its payer."""
    hold = _hold(hold_id, body.hold)
    return _send(
        request,
        principal,
        idempotency_key,
        body,
        lambda service, session: service.void(
            session, owner=principal.owner, hold=hold, reference=idempotency_key
        ),
    )
