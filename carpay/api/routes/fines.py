"""POST /v1/fines, /v1/fines/{id}/waive and /pay: an authority's fines, from its own key,
and their payment, from the key of the vehicle's owner.

For the authority's (or the owner's) API owner only (see :mod:`carpay.services.fines`);
every POST needs an Idempotency-Key. Follow each at ``/v1/outbox/{id}``; the vehicle's record
(``/v1/vehicles/{vin}``) shows its fines, and ``fine.issued``, ``fine.paid`` and
``fine.waived`` reach the authority's owner.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

from carpay.accounts.api_keys import Principal
from carpay.api.problems import problem_responses
from carpay.api.routes.common import ContractId, IdempotencyKey, platform, send_intent
from carpay.api.schemas import _ADDRESS, IntentOut, _In
from carpay.api.security import requires
from carpay.services.fines import MAX_AMOUNT

router = APIRouter(tags=["fines"], responses=problem_responses(401, 403, 422, 429))


class FineCreate(_In):
    authority: str = Field(description="the issuing authority (a merchant)", **_ADDRESS)
    vin: str = Field(min_length=17, max_length=17, description="the vehicle's VIN (ISO 3779)")
    token: str = Field(description="the currency token it is paid in", **_ADDRESS)
    amount_minor: int = Field(gt=0, le=MAX_AMOUNT)
    late_fee_minor: int = Field(0, ge=0, le=MAX_AMOUNT, description="added after the due date")
    due: int = Field(gt=0, lt=2**64, description="unix time: paid by then, no late fee")
    reason: int = Field(ge=0, lt=2**16, description="the authority's offence code")


class FineWaive(_In):
    authority: str = Field(description="the authority that issued it", **_ADDRESS)


class FinePayment(_In):
    payer: str = Field(description="the vehicle's owner, who pays it", **_ADDRESS)


class FineRequestOut(IntentOut):
    """A fine issued or waived: an intent of kind ``fine_issue`` or ``fine_waive``."""

    authority: str


class FinePaymentOut(IntentOut):
    """A fine paid: an intent of kind ``fine_pay``."""

    payer: str
    fine_id: int
    due_minor: int


@router.post(
    "/fines",
    status_code=201,
    response_model=FineRequestOut,
    responses=problem_responses(400, 404, 409, 503),
    summary="Issue a fine",
)
def issue_fine(
    body: FineCreate,
    request: Request,
    principal: Annotated[Principal, Depends(requires("payments:write"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    """Fine a vehicle; whoever owns it when it is paid pays it."""
    return send_intent(
        request,
        principal,
        idempotency_key,
        body,
        FineRequestOut,
        lambda session: platform(request).fines.issue(
            session, owner=principal.owner, reference=idempotency_key, **body.model_dump()
        ),
    )


@router.post(
    "/fines/{fine_id}/waive",
    status_code=201,
    response_model=FineRequestOut,
    responses=problem_responses(400, 404, 409, 503),
    summary="Waive a fine",
)
def waive_fine(
    fine_id: ContractId,
    body: FineWaive,
    request: Request,
    principal: Annotated[Principal, Depends(requires("payments:write"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    """Waive an unpaid fine the authority issued: nothing is owed any more."""
    return send_intent(
        request,
        principal,
        idempotency_key,
        body,
        FineRequestOut,
        lambda session: platform(request).fines.waive(
            session,
            owner=principal.owner,
            authority=body.authority,
            fine_id=fine_id,
            reference=idempotency_key,
        ),
    )


@router.post(
    "/fines/{fine_id}/pay",
    status_code=201,
    response_model=FinePaymentOut,
    responses=problem_responses(400, 402, 404, 409, 503),
    summary="Pay a fine",
)
def pay_fine(
    fine_id: ContractId,
    body: FinePayment,
    request: Request,
    principal: Annotated[Principal, Depends(requires("payments:write"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    """The vehicle's owner pays an unpaid fine (with the late fee after the due date)."""
    return send_intent(
        request,
        principal,
        idempotency_key,
        body,
        FinePaymentOut,
        lambda session: platform(request).fines.pay(
            session,
            owner=principal.owner,
            payer=body.payer,
            fine_id=fine_id,
            reference=idempotency_key,
        ),
    )
