"""POST /v1/vehicles: a registrar titles a vehicle by its VIN, from its own key.

For the registrar's API owner only (see :mod:`carpay.services.vehicles`); needs an
Idempotency-Key. Follow it at ``/v1/outbox/{id}``; the vehicle's record is at
``/v1/vehicles/{vin}`` once indexed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

from carpay.accounts.api_keys import Principal
from carpay.api.idempotency import idempotent
from carpay.api.problems import problem_responses
from carpay.api.routes.common import IdempotencyKey, platform
from carpay.api.schemas import _ADDRESS, IntentOut, _In
from carpay.api.security import requires

router = APIRouter(tags=["vehicles"], responses=problem_responses(401, 403, 422, 429))


class VehicleCreate(_In):
    registrar: str = Field(description="the registrar that titles it (an OEM)", **_ADDRESS)
    vin: str = Field(min_length=17, max_length=17, description="the VIN (ISO 3779)")
    holder: str = Field(description="who the title goes to", **_ADDRESS)


class TitleRequestOut(IntentOut):
    """A title being minted: an intent of kind ``title``."""

    registrar: str
    vin: str
    title: str
    holder: str


@router.post(
    "/vehicles",
    status_code=201,
    response_model=TitleRequestOut,
    responses=problem_responses(400, 409, 503),
    summary="Register a vehicle",
)
def register_vehicle(
    body: VehicleCreate,
    request: Request,
    principal: Annotated[Principal, Depends(requires("vehicles:write"))],
    idempotency_key: IdempotencyKey,
) -> Response:
    """Mint the vehicle's title to its holder; a VIN is titled once."""
    vehicles = platform(request).vehicles
    return idempotent(
        request,
        principal,
        idempotency_key,
        body,
        lambda session: TitleRequestOut.of(
            vehicles.register(
                session, owner=principal.owner, reference=idempotency_key, **body.model_dump()
            )
        ),
        model=TitleRequestOut,
    )
