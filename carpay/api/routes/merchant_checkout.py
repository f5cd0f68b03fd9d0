"""The merchant's side of checkout over HTTP: invoices, refunds, captures and voids of holds.

Sent from the merchant's own key, for the merchant's API owner only (see
:mod:`carpay.services.merchant_checkout`); every POST needs an Idempotency-Key. Follow each at
``/v1/outbox/{id}``; ``refund.succeeded``, ``hold.captured`` and ``hold.released`` follow
from the ledger.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from carpay.accounts.api_keys import Principal
from carpay.api.idempotency import idempotent
from carpay.api.problems import problem_responses
from carpay.api.routes.common import IdempotencyKey, platform
from carpay.api.routes.payments import HoldIn, InvoiceIn
from carpay.api.schemas import _ADDRESS, IntentOut, _In
from carpay.api.security import requires
from carpay.errors import ValidationFailed
from carpay.services import checkout as svc

router = APIRouter(tags=["payments"], responses=problem_responses(401, 403, 422, 429))

HoldId = Annotated[str, Path(pattern="^0x[0-9a-fA-F]{64}$", description="the hold's id")]


class InvoiceCreate(_In):
    """An invoice to sign with the merchant's key."""

    merchant: str = Field(**_ADDRESS)
    amount_minor: int = Field(gt=0, lt=2**256)
    token: str = Field(description="the currency token to pay in", **_ADDRESS)
    expiry: int = Field(gt=0, lt=2**64, description="unix time after which it cannot be paid")
    payer: str = Field(
        "0x" + "00" * 20, description="the only payer allowed (zero: anyone)", **_ADDRESS
    )
    invoice_id: str | None = Field(
        None, pattern="^0x[0-9a-fA-F]{64}$", description="32 bytes; default: random"
    )


class SignedInvoiceOut(BaseModel):
    """An invoice and the merchant's signature of it: what a payer pays
    (``POST /v1/payments``, or checkout's ``payInvoice`` from their own wallet)."""

    invoice: dict[str, Any]
    merchant_signature: str
    invoice_hash: str


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
    "/invoices",
    status_code=201,
    response_model=SignedInvoiceOut,
    responses=problem_responses(400, 409, 503),
    summary="Create an invoice",
)
def create_invoice(
    body: InvoiceCreate,
    request: Request,
    principal: Annotated[Principal, Depends(requires("payments:write"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    """Sign an invoice with the merchant's key; the same Idempotency-Key gives the same one."""
    service = platform(request).merchant_checkout

    def sign(session: Session) -> dict[str, Any]:
        invoice, signature = service.create_invoice(
            session, owner=principal.owner, **body.model_dump()
        )
        return {
            "invoice": asdict(invoice),
            "merchant_signature": signature,
            "invoice_hash": "0x" + invoice.struct_hash().hex(),
        }

    return idempotent(request, principal, idempotency_key, body, sign, model=SignedInvoiceOut)


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
