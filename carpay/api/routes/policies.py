"""POST /v1/policies and /v1/policies/{id}/claims: an insurer's offers and claims, from its key.

For the insurer's API owner only (see :mod:`carpay.services.policies`); every POST needs an
Idempotency-Key. Follow each at ``/v1/outbox/{id}``; the vehicle's record
(``/v1/vehicles/{vin}``) shows its policies, and ``policy.accepted``, ``policy.renewed``,
``policy.lapsed``, ``policy.cancelled`` and ``claim.paid`` reach the insurer's owner.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

from carpay.accounts.api_keys import Principal
from carpay.api.problems import problem_responses
from carpay.api.routes.common import ContractId, IdempotencyKey, platform, send_intent
from carpay.api.schemas import _ADDRESS, TEXT, IntentOut, _In
from carpay.api.security import requires
from carpay.services.policies import MAX_PERIOD, MAX_PREMIUM

router = APIRouter(tags=["insurance"], responses=problem_responses(401, 403, 422, 429))


class PolicyOffer(_In):
    insurer: str = Field(description="the insurer (a merchant)", **_ADDRESS)
    vin: str = Field(min_length=17, max_length=17, description="the vehicle's VIN (ISO 3779)")
    token: str = Field(description="the currency token of the premium", **_ADDRESS)
    premium_minor: int = Field(gt=0, le=MAX_PREMIUM, description="the premium of one term")
    term: int = Field(gt=0, le=MAX_PERIOD, description="seconds")
    grace: int = Field(gt=0, le=MAX_PERIOD, description="seconds after a term: renewal still")
    refund_bps: int = Field(ge=0, le=10_000, description="of the unearned premium, on cancel")
    expiry: int = Field(gt=0, lt=2**64, description="unix time: accept by then")


class ClaimCreate(_In):
    insurer: str = Field(description="the policy's insurer", **_ADDRESS)
    amount_minor: int = Field(gt=0, lt=2**256)
    claim: str = Field(
        min_length=1, max_length=100, pattern=TEXT, description="the insurer's claim number"
    )


class PolicyAcceptance(_In):
    holder: str = Field(description="the vehicle's owner, who takes the policy", **_ADDRESS)
    max_premium_minor: int = Field(gt=0, le=MAX_PREMIUM, description="most a renewal may pull")
    allowance_minor: int = Field(
        gt=0, lt=2**256, description="what insurance may pull: the first premium and renewals"
    )


class PolicyCancellation(_In):
    holder: str = Field(description="the policy's holder", **_ADDRESS)


class HolderRequestOut(IntentOut):
    """An acceptance or a cancellation: an intent of kind ``policy_accept`` or
    ``policy_cancel``."""

    holder: str
    policy_id: int


class PolicyRequestOut(IntentOut):
    """An offer or a claim: an intent of kind ``policy_offer`` or ``claim``."""

    insurer: str


@router.post(
    "/policies",
    status_code=201,
    response_model=PolicyRequestOut,
    responses=problem_responses(400, 404, 409, 503),
    summary="Offer a policy",
)
def offer_policy(
    body: PolicyOffer,
    request: Request,
    principal: Annotated[Principal, Depends(requires("payments:write"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    """Offer the vehicle's owner a policy; it starts when they accept it."""
    return send_intent(
        request,
        principal,
        idempotency_key,
        body,
        PolicyRequestOut,
        lambda session: platform(request).policies.offer(
            session, owner=principal.owner, reference=idempotency_key, **body.model_dump()
        ),
    )


@router.post(
    "/policies/{policy_id}/claims",
    status_code=201,
    response_model=PolicyRequestOut,
    responses=problem_responses(400, 404, 409, 503),
    summary="Pay a claim",
)
def pay_claim(
    policy_id: ContractId,
    body: ClaimCreate,
    request: Request,
    principal: Annotated[Principal, Depends(requires("payments:write"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    """Pay the policy's holder for a claim, from the insurer's balance; once per claim."""
    return send_intent(
        request,
        principal,
        idempotency_key,
        body,
        PolicyRequestOut,
        lambda session: platform(request).policies.pay_claim(
            session,
            owner=principal.owner,
            policy_id=policy_id,
            reference=idempotency_key,
            **body.model_dump(),
        ),
    )


@router.post(
    "/policies/{policy_id}/accept",
    status_code=201,
    response_model=HolderRequestOut,
    responses=problem_responses(400, 402, 404, 409, 503),
    summary="Accept a policy offer",
)
def accept_policy(
    policy_id: ContractId,
    body: PolicyAcceptance,
    request: Request,
    principal: Annotated[Principal, Depends(requires("payments:write"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    """The vehicle's owner takes the offered policy: the first premium is paid now."""
    return send_intent(
        request,
        principal,
        idempotency_key,
        body,
        HolderRequestOut,
        lambda session: platform(request).policies.accept(
            session,
            owner=principal.owner,
            policy_id=policy_id,
            reference=idempotency_key,
            **body.model_dump(),
        ),
    )


@router.post(
    "/policies/{policy_id}/cancel",
    status_code=201,
    response_model=HolderRequestOut,
    responses=problem_responses(400, 404, 409, 503),
    summary="Cancel a policy",
)
def cancel_policy(
    policy_id: ContractId,
    body: PolicyCancellation,
    request: Request,
    principal: Annotated[Principal, Depends(requires("payments:write"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    """The holder ends the policy now, with the insurer's refund of the unearned premium."""
    return send_intent(
        request,
        principal,
        idempotency_key,
        body,
        HolderRequestOut,
        lambda session: platform(request).policies.cancel(
            session,
            owner=principal.owner,
            holder=body.holder,
            policy_id=policy_id,
            reference=idempotency_key,
        ),
    )
