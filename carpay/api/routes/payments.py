"""POST/GET /v1/payments and POST /v1/holds: gasless checkout through the platform's relayer.

The payer signs an EIP-3009 ``ReceiveWithAuthorization`` whose nonce is the invoice's (or the
hold's) EIP-712 struct hash; the platform checks everything it can, records the intent and
answers 201 at once; the relayer sends it, and ``payment.succeeded`` / ``hold.succeeded``
(or ``.failed``) webhooks follow. Every POST needs an ``Idempotency-Key``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from carpay.accounts.api_keys import Principal
from carpay.api.idempotency import idempotent
from carpay.api.problems import problem_responses
from carpay.api.routes.common import After, Id, IdempotencyKey, Limit, platform
from carpay.api.schemas import IntentOut, List, page_of
from carpay.api.security import requires
from carpay.services import checkout as svc
from carpay.services.checkout import HOLD_KIND, PAYMENT_KIND

router = APIRouter(tags=["payments"], responses=problem_responses(401, 403, 422, 429))

_ADDRESS = {"pattern": "^0x[0-9a-fA-F]{40}$", "examples": ["0x" + "ab" * 20]}
_BYTES32 = {"pattern": "^0x[0-9a-fA-F]{64}$", "examples": ["0x" + "07" * 32]}
_UINT64 = {"ge": 0, "lt": 2**64}


class _In(BaseModel):
    model_config = {"extra": "forbid"}


class InvoiceIn(_In):
    """An invoice exactly as the merchant signed it (EIP-712, checkout's domain)."""

    merchant: str = Field(**_ADDRESS)
    amount_minor: int = Field(gt=0, lt=2**256)
    token: str = Field(**_ADDRESS)
    invoice_id: str = Field(**_BYTES32)
    expiry: int = Field(**_UINT64)
    payer: str = Field("0x" + "00" * 20, **_ADDRESS)


class HoldIn(_In):
    """A hold as its payer signs it; its id is its EIP-712 struct hash."""

    payer: str = Field(**_ADDRESS)
    merchant: str = Field(**_ADDRESS)
    token: str = Field(**_ADDRESS)
    amount_minor: int = Field(gt=0, lt=2**256)
    deadline: int = Field(**_UINT64)
    salt: str = Field(**_BYTES32)


class AuthorizationIn(_In):
    """The payer's ``ReceiveWithAuthorization`` signature (to: checkout, nonce: the hash)."""

    valid_after: int = Field(**_UINT64)
    valid_before: int = Field(**_UINT64)
    v: int = Field(ge=0, le=255)
    r: str = Field(**_BYTES32)
    s: str = Field(**_BYTES32)


class PaymentCreate(_In):
    invoice: InvoiceIn
    merchant_signature: str = Field(
        pattern="^0x[0-9a-fA-F]{130}$", description="r ‖ s ‖ v, 65 bytes"
    )
    payer: str = Field(**_ADDRESS)
    authorization: AuthorizationIn


class HoldCreate(_In):
    hold: HoldIn
    authorization: AuthorizationIn


class PaymentOut(IntentOut):
    """A gasless invoice payment: an intent of kind ``payment``."""

    invoice: dict[str, Any]
    payer: str
    invoice_hash: str


class HoldOut(IntentOut):
    """A gasless hold: an intent of kind ``hold``."""

    hold: dict[str, Any]
    hold_id: str


def _authorization(body: AuthorizationIn) -> svc.ReceiveAuthorization:
    return svc.ReceiveAuthorization(**body.model_dump())


@router.post(
    "/payments",
    status_code=201,
    response_model=PaymentOut,
    responses=problem_responses(400, 409, 503),
    summary="Pay a signed invoice for a payer who signed an authorization",
)
def create_payment(
    body: PaymentCreate,
    request: Request,
    principal: Annotated[Principal, Depends(requires("payments:write"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    checkout = platform(request).checkout
    return idempotent(
        request,
        principal,
        idempotency_key,
        body,
        lambda session, checked: PaymentOut.of(checkout.enqueue(session, principal.owner, checked)),
        model=PaymentOut,
        check=lambda: checkout.check_payment(
            invoice=svc.Invoice(**body.invoice.model_dump()),
            merchant_signature=body.merchant_signature,
            payer=body.payer,
            authorization=_authorization(body.authorization),
        ),
    )


@router.post(
    "/holds",
    status_code=201,
    response_model=HoldOut,
    responses=problem_responses(400, 409, 503),
    summary="Place a hold for a payer who signed an authorization",
)
def create_hold(
    body: HoldCreate,
    request: Request,
    principal: Annotated[Principal, Depends(requires("payments:write"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    checkout = platform(request).checkout
    return idempotent(
        request,
        principal,
        idempotency_key,
        body,
        lambda session, checked: HoldOut.of(checkout.enqueue(session, principal.owner, checked)),
        model=HoldOut,
        check=lambda: checkout.check_hold(
            hold=svc.Hold(**body.hold.model_dump()),
            authorization=_authorization(body.authorization),
        ),
    )


@router.get("/payments", response_model=List[PaymentOut], summary="List payments")
def list_payments(
    request: Request,
    principal: Annotated[Principal, Depends(requires("payments:read"))],
    limit: Limit = 50,
    after: After = None,
) -> dict:
    p = platform(request)
    with p.db.read() as session:
        page = p.outbox.list(
            session, owner=principal.owner, kind=PAYMENT_KIND, limit=limit, after=after
        )
        return page_of(page, PaymentOut.of)


@router.get(
    "/payments/{payment_id}",
    response_model=PaymentOut,
    responses=problem_responses(404),
    summary="Get a payment",
)
def get_payment(
    payment_id: Id,
    request: Request,
    principal: Annotated[Principal, Depends(requires("payments:read"))],
) -> dict:
    p = platform(request)
    with p.db.read() as session:
        intent = p.outbox.get(session, payment_id, owner=principal.owner, kind=PAYMENT_KIND)
        return PaymentOut.of(intent)


@router.get(
    "/holds/requests/{request_id}",
    response_model=HoldOut,
    responses=problem_responses(404),
    summary="Get a hold request",
)
def get_hold_request(
    request_id: Id,
    request: Request,
    principal: Annotated[Principal, Depends(requires("payments:read"))],
) -> dict:
    p = platform(request)
    with p.db.read() as session:
        return HoldOut.of(p.outbox.get(session, request_id, owner=principal.owner, kind=HOLD_KIND))
