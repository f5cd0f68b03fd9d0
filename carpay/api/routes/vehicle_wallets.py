"""/v1/vehicle-wallets/{address}: what a car's own wallet may spend, set by the car's owner.

Sent from the key of the vehicle's owner for its API owner (see
:mod:`carpay.services.vehicle_wallets`); every POST needs an Idempotency-Key. Follow each at
``/v1/outbox/{id}``; ``GET`` reads the wallet on chain.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field

from carpay.accounts.api_keys import Principal
from carpay.api.problems import problem_responses
from carpay.api.routes.common import IdempotencyKey, platform, send_intent
from carpay.api.schemas import _ADDRESS, IntentOut, _In
from carpay.api.security import requires
from carpay.services.platform import CATEGORIES
from carpay.services.vehicle_wallets import MAX_LIMIT

router = APIRouter(tags=["vehicle wallets"], responses=problem_responses(401, 403, 422, 429))
Wallet = Annotated[str, Path(**_ADDRESS)]
Category = Literal[CATEGORIES]  # type: ignore[valid-type]
_WRITE = Depends(requires("payments:write"))
_POST = {
    "status_code": 201,
    "response_model": IntentOut,
    "responses": problem_responses(400, 404, 409, 503),
}


class WalletCreate(_In):
    holder: str = Field(description="the vehicle's owner", **_ADDRESS)
    vin: str = Field(min_length=17, max_length=17, description="the vehicle's VIN (ISO 3779)")
    device_key: str = Field(description="the car's key (the zero address: none yet)", **_ADDRESS)


class Limits(_In):
    token: str = Field(description="the currency token the limits are in", **_ADDRESS)
    category: Category
    daily_minor: int = Field(ge=0, le=MAX_LIMIT, description="most spent a day (0: nothing)")
    per_payment_minor: int = Field(ge=0, le=MAX_LIMIT, description="most spent a payment")


class CategoryRule(_In):
    category: Category
    allowed: bool


class Frozen(_In):
    frozen: bool = Field(description="true: the device key pays nothing until unfrozen")


class DeviceKey(_In):
    device_key: str = Field(description="the car's new key (a stolen car: rotate it)", **_ADDRESS)


class WalletOut(BaseModel):
    """A vehicle wallet as the chain has it."""

    wallet: str
    owner: str
    device_key: str
    frozen: bool
    categories: list[str]
    limits: list[dict[str, Any]]


@router.post("/vehicle-wallets", summary="Create a vehicle's wallet", **_POST)
def create_wallet(
    body: WalletCreate,
    request: Request,
    principal: Annotated[Principal, _WRITE],
    idempotency_key: IdempotencyKey,
) -> Response:
    """The vehicle's owner creates its one wallet (kind ``wallet_create``); the vehicle's record
    (``/v1/vehicles/{vin}``) shows its address once indexed."""
    return send_intent(
        request,
        principal,
        idempotency_key,
        body,
        IntentOut,
        lambda session: platform(request).vehicle_wallets.create(
            session, owner=principal.owner, reference=idempotency_key, **body.model_dump()
        ),
    )


@router.get(
    "/vehicle-wallets/{wallet}",
    response_model=WalletOut,
    responses=problem_responses(404, 503),
    summary="A vehicle wallet",
)
def get_wallet(
    wallet: Wallet, request: Request, _: Annotated[Principal, Depends(requires("ledger:read"))]
) -> dict:
    return platform(request).vehicle_wallets.get(wallet)


@router.post("/vehicle-wallets/{wallet}/limits", summary="Set a category's limits", **_POST)
def set_limits(
    wallet: Wallet,
    body: Limits,
    request: Request,
    principal: Annotated[Principal, _WRITE],
    idempotency_key: IdempotencyKey,
) -> Response:
    """What the car may spend a day and a payment at merchants of a category (kind
    ``wallet_limits``)."""
    return send_intent(
        request,
        principal,
        idempotency_key,
        body,
        IntentOut,
        lambda session: platform(request).vehicle_wallets.set_limits(
            session,
            owner=principal.owner,
            wallet=wallet,
            reference=idempotency_key,
            **body.model_dump(),
        ),
    )


@router.post("/vehicle-wallets/{wallet}/categories", summary="Allow a category", **_POST)
def allow_category(
    wallet: Wallet,
    body: CategoryRule,
    request: Request,
    principal: Annotated[Principal, _WRITE],
    idempotency_key: IdempotencyKey,
) -> Response:
    """Let the car pay merchants of a category, or no longer (kind ``wallet_category``)."""
    return send_intent(
        request,
        principal,
        idempotency_key,
        body,
        IntentOut,
        lambda session: platform(request).vehicle_wallets.allow_category(
            session,
            owner=principal.owner,
            wallet=wallet,
            reference=idempotency_key,
            **body.model_dump(),
        ),
    )


@router.post("/vehicle-wallets/{wallet}/frozen", summary="Freeze or unfreeze", **_POST)
def set_frozen(
    wallet: Wallet,
    body: Frozen,
    request: Request,
    principal: Annotated[Principal, _WRITE],
    idempotency_key: IdempotencyKey,
) -> Response:
    """Freeze the wallet, or unfreeze it (kind ``wallet_freeze`` or ``wallet_unfreeze``)."""
    return send_intent(
        request,
        principal,
        idempotency_key,
        body,
        IntentOut,
        lambda session: platform(request).vehicle_wallets.set_frozen(
            session,
            owner=principal.owner,
            wallet=wallet,
            frozen=body.frozen,
            reference=idempotency_key,
        ),
    )


@router.post("/vehicle-wallets/{wallet}/device-key", summary="Rotate the device key", **_POST)
def rotate_device_key(
    wallet: Wallet,
    body: DeviceKey,
    request: Request,
    principal: Annotated[Principal, _WRITE],
    idempotency_key: IdempotencyKey,
) -> Response:
    """Replace the car's key (kind ``wallet_device_key``)."""
    return send_intent(
        request,
        principal,
        idempotency_key,
        body,
        IntentOut,
        lambda session: platform(request).vehicle_wallets.rotate_device_key(
            session,
            owner=principal.owner,
            wallet=wallet,
            device_key=body.device_key,
            reference=idempotency_key,
        ),
    )
