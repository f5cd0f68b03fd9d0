"""GET /v1/outbox/{id}: where any transaction the platform promised to send stands."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from carpay.accounts.api_keys import Principal
from carpay.api.problems import problem_responses
from carpay.api.routes.common import Id, platform
from carpay.api.schemas import IntentOut
from carpay.api.security import requires

router = APIRouter(tags=["outbox"], responses=problem_responses(401, 403, 422, 429))


@router.get(
    "/outbox/{intent_id}",
    response_model=IntentOut,
    responses=problem_responses(404),
    summary="Get an intent's status",
)
def get_intent(
    intent_id: Id,
    request: Request,
    principal: Annotated[Principal, Depends(requires("transfers:read"))],
) -> dict:
    p = platform(request)
    with p.db.read() as session:
        return IntentOut.of(p.outbox.get(session, intent_id, owner=principal.owner))
