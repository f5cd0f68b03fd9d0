"""POST /v1/merchants: the platform onboards a merchant; every POST needs an Idempotency-Key.

The merchant is registered on chain by the operator's relayer (follow it at
``/v1/outbox/{id}``, or hear ``merchant.succeeded``) and linked to the API owner whose keys
and webhooks speak for it: from then on that owner hears ``payment.received``,
``refund.succeeded``, ``hold.captured``, ``fine.paid``, ``policy.renewed`` and the other
events of the ledger that concern the merchant.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from carpay.accounts import participants
from carpay.accounts.api_keys import Principal
from carpay.api.idempotency import idempotent
from carpay.api.problems import problem_responses
from carpay.api.routes.common import IdempotencyKey, platform
from carpay.api.schemas import _ADDRESS, TEXT, IntentOut, _In
from carpay.api.security import requires
from carpay.errors import ServiceUnavailable
from carpay.services.merchants import MAX_FEE_BPS
from carpay.services.platform import CATEGORIES

router = APIRouter(tags=["merchants"], responses=problem_responses(401, 403, 422, 429))

Category = Literal[CATEGORIES]  # type: ignore[valid-type]


class MerchantCreate(_In):
    """A merchant to register, and the API owner that speaks for it."""

    merchant: str = Field(description="the merchant's address (it signs invoices)", **_ADDRESS)
    owner: str = Field(
        min_length=1, max_length=100, pattern=TEXT, description="the API owner it belongs to"
    )
    category: Category
    payout: str = Field(description="where its takings go", **_ADDRESS)
    fee_bps: int = Field(ge=0, le=MAX_FEE_BPS, description="the platform's fee, in basis points")


class ParticipantLink(_In):
    """An address of the ledger (a registrar, a merchant registered some other way) and the
    API owner that speaks for it."""

    address: str = Field(**_ADDRESS)
    owner: str = Field(min_length=1, max_length=100, pattern=TEXT)


class ParticipantOut(BaseModel):
    address: str
    owner: str
    chain_id: int


class MerchantOnboardingOut(IntentOut):
    """An onboarding: an intent of kind ``merchant``, sent by the operator."""

    merchant: str
    owner: str
    category: str
    payout: str
    fee_bps: int


@router.post(
    "/merchants",
    status_code=201,
    response_model=MerchantOnboardingOut,
    responses=problem_responses(400, 409, 503),
    summary="Onboard a merchant",
)
def onboard_merchant(
    body: MerchantCreate,
    request: Request,
    principal: Annotated[Principal, Depends(requires("admin"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    """Register ``merchant`` on chain and make ``owner`` the API owner that speaks for it.

    Only an admin key may onboard. A merchant already registered, or already some owner's,
    is a 409.
    """
    merchants = platform(request).merchants
    return idempotent(
        request,
        principal,
        idempotency_key,
        body,
        lambda session: MerchantOnboardingOut.of(
            merchants.onboard(
                session,
                requested_by=principal.owner,
                reference=idempotency_key,
                **body.model_dump(),
            )
        ),
        model=MerchantOnboardingOut,
    )


@router.post(
    "/participants",
    status_code=201,
    response_model=ParticipantOut,
    responses=problem_responses(400, 409, 503),
    summary="Link an address to its API owner",
)
def link_participant(
    body: ParticipantLink,
    request: Request,
    principal: Annotated[Principal, Depends(requires("admin"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    """Make ``owner`` the API owner of ``address`` (an OEM's registrar, say): its keys act
    for the address where the platform holds its key, and its webhooks hear of it. Only an
    admin key may link; an address some owner has is a 409."""
    p = platform(request)
    if p.chain is None:
        raise ServiceUnavailable("no node is configured: participants are unavailable")
    chain_id = p.chain.chain_id

    def run(session: Session) -> dict:
        account = participants.link(
            session, owner=body.owner, chain_id=chain_id, address=body.address
        )
        return {"address": account.address, "owner": account.owner, "chain_id": chain_id}

    return idempotent(request, principal, idempotency_key, body, run, model=ParticipantOut)
