"""The API application: :func:`create_app` wires the services into FastAPI routers under /v1."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi import FastAPI

from carpay.accounts.api_keys import ApiKeys
from carpay.accounts.custody import Keyring
from carpay.accounts.platform import operator_account, relayer_account
from carpay.api.problems import PROBLEM_MEDIA_TYPE, Problem, install_problem_handlers
from carpay.api.security import RateLimiter
from carpay.chain import Chain
from carpay.errors import DeploymentNotFound, ServiceUnavailable
from carpay.ledger.db import Database
from carpay.ledger.models import utcnow
from carpay.services.checkout import ChainCheckoutView, CheckoutPayments
from carpay.services.escrows import Escrows
from carpay.services.fines import Fines
from carpay.services.idempotency import IdempotencyKeys
from carpay.services.merchant_checkout import MerchantCheckout
from carpay.services.merchants import Merchants
from carpay.services.outbox import Outbox
from carpay.services.participant_keys import ParticipantKeys
from carpay.services.platform import currency_tokens, deployed_address
from carpay.services.policies import Policies
from carpay.services.transfers import Transfers
from carpay.services.vehicle_wallets import ChainWalletView, VehicleWallets
from carpay.services.vehicles import Vehicles
from carpay.services.webhooks import Webhooks
from carpay.settings import Settings

__all__ = ["ApiServices", "create_app"]

DESCRIPTION = """\
Payments for the automotive world on an EVM ledger.

Authenticate with an API key: `Authorization: Bearer cpk_...`. Every request that moves
money needs an `Idempotency-Key` header: repeating it with the same body returns the first
answer without doing anything twice. Errors are RFC 9457 problem details
(`application/problem+json`) whose `type` names a stable code. Lists are newest first and
paged with `limit` and `after` (the previous page's `next_after`).
"""


@dataclass
class ApiServices:
    """The services the routers call, built once per application."""

    db: Database
    chain: Chain | None
    settings: Settings
    clock: Callable[[], datetime]
    api_keys: ApiKeys
    webhooks: Webhooks
    outbox: Outbox
    transfers: Transfers
    idempotency: IdempotencyKeys
    limiter: RateLimiter
    operator_outbox: Outbox
    keyring: Keyring
    _checkout: CheckoutPayments | None = None
    _merchants: Merchants | None = None
    _merchant_checkout: MerchantCheckout | None = None
    _fines: Fines | None = None
    _policies: Policies | None = None
    _vehicles: Vehicles | None = None
    _escrows: Escrows | None = None
    _vehicle_wallets: VehicleWallets | None = None

    def _deployed(self, what: str, name: str) -> str:
        if self.chain is None:
            raise ServiceUnavailable(f"no node is configured: {what} are unavailable")
        try:
            return self.chain.deployment(name).address
        except DeploymentNotFound:
            raise ServiceUnavailable(
                f"the {name} contract is not deployed on this chain: {what} are unavailable"
            ) from None

    @property
    def merchants(self) -> Merchants:
        """Onboarding through the operator, on the registry recorded for the chain."""
        if self._merchants is None:
            registry = self._deployed("merchant onboardings", "merchant_registry")
            self._merchants = Merchants(self.operator_outbox, registry)
        return self._merchants

    @property
    def checkout(self) -> CheckoutPayments:
        """Gasless checkout, on the checkout contract recorded for the chain (built once)."""
        if self._checkout is None:
            if self.chain is None:
                raise ServiceUnavailable("no node is configured: payments are unavailable")
            try:
                view = ChainCheckoutView(self.chain)
            except DeploymentNotFound:
                raise ServiceUnavailable(
                    "the checkout contract is not deployed on this chain: payments are unavailable"
                ) from None
            self._checkout = CheckoutPayments(self.outbox, view, clock=self.clock)
        return self._checkout

    @property
    def merchant_checkout(self) -> MerchantCheckout:
        """Refunds, captures and voids from the keys of ``keyring`` (built once)."""
        if self._merchant_checkout is None:
            view = self.checkout.view
            self._merchant_checkout = MerchantCheckout(view, self.keyring, clock=self.clock)
        return self._merchant_checkout

    def _keys(self) -> ParticipantKeys:
        assert self.chain is not None  # _deployed checked
        return ParticipantKeys(self.keyring, chain_id=self.chain.chain_id, clock=self.clock)

    def _currencies(self) -> frozenset[str]:
        assert self.chain is not None  # _deployed checked
        return currency_tokens(self.chain)

    def _now(self) -> int:
        return int(self.clock().timestamp())

    def _balance(self, token: str, account: str) -> int:
        return self.checkout.view.balance(token, account)

    @property
    def fines(self) -> Fines:
        """Fines issued and waived from the authorities' keys of ``keyring`` (built once)."""
        if self._fines is None:
            address = self._deployed("fines", "traffic_fines")
            self._fines = Fines(
                self._keys(),
                address,
                currencies=self._currencies(),
                balance=self._balance,
                now=self._now,
            )
        return self._fines

    @property
    def policies(self) -> Policies:
        """Offers and claims from the insurers' keys of ``keyring`` (built once)."""
        if self._policies is None:
            address = self._deployed("policies", "insurance")
            self._policies = Policies(
                self._keys(),
                address,
                currencies=self._currencies(),
                balance=self._balance,
                now=self._now,
            )
        return self._policies

    @property
    def escrows(self) -> Escrows:
        """Vehicle sales by escrow from the parties' keys of ``keyring`` (built once)."""
        if self._escrows is None:
            address = self._deployed("vehicle sales", "vehicle_escrow")
            registry = self._deployed("vehicle sales", "vehicle_registry")
            self._escrows = Escrows(
                self._keys(),
                address,
                registry,
                currencies=self._currencies(),
                balance=self._balance,
                now=self._now,
            )
        return self._escrows

    @property
    def vehicle_wallets(self) -> VehicleWallets:
        """Vehicle wallets' limits and controls from their owners' keys of ``keyring``."""
        if self._vehicle_wallets is None:
            if self.chain is None:
                raise ServiceUnavailable("no node is configured: vehicle wallets are unavailable")
            self._vehicle_wallets = VehicleWallets(
                self._keys(),
                ChainWalletView(self.chain),
                currencies=self._currencies(),
                # None on a deployment older than the factory: existing wallets only.
                factory=deployed_address(self.chain, "vehicle_wallet_factory"),
            )
        return self._vehicle_wallets

    @property
    def vehicles(self) -> Vehicles:
        """Titles minted from the registrars' keys of ``keyring`` (built once)."""
        if self._vehicles is None:
            address = self._deployed("vehicle registrations", "vehicle_registry")
            self._vehicles = Vehicles(self._keys(), address)
        return self._vehicles


def create_app(
    db: Database,
    chain: Chain | None,
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    monotonic: Callable[[], float] = time.monotonic,
    relayer_address: str | None = None,
    operator_address: str | None = None,
    keyring: Keyring | None = None,
) -> FastAPI:
    """The carpay API on ``db``, sending through ``chain`` (None: no node; /rpc answers 503).

    Transfers are written to the outbox as sent by ``relayer_address`` (default: the
    settings' relayer account), for whichever relayer runs beside (see
    :func:`carpay.services.workers.start_workers`); merchant onboardings as sent by
    ``operator_address`` (default: the settings' operator); what only a participant may do
    (invoices, refunds, captures, fines, policies, titles, sales) from the keys ``keyring`` holds
    (default: none), each by its own relayer. ``clock`` gives the time of records,
    ``monotonic`` the time of rate limits.
    """
    from carpay.api.routes import (
        api_keys,
        escrows,
        fines,
        ledger,
        merchant_checkout,
        merchants,
        outbox,
        payments,
        policies,
        rpc,
        transfers,
        vehicle_wallets,
        vehicles,
        webhooks,
    )

    sender = relayer_address or relayer_account(settings).address
    operator = operator_address or operator_account(settings).address
    chain_id: int | Callable[[], int] = (lambda: chain.chain_id) if chain else settings.chain_id
    box = Outbox(sender=sender, chain_id=chain_id, clock=clock)
    platform = ApiServices(
        db=db,
        chain=chain,
        settings=settings,
        clock=clock,
        api_keys=ApiKeys(clock=clock),
        webhooks=Webhooks(clock=clock),
        outbox=box,
        transfers=Transfers(box),
        idempotency=IdempotencyKeys(db, clock=clock),
        limiter=RateLimiter(settings.rate_limit, settings.rate_burst, monotonic),
        operator_outbox=Outbox(sender=operator, chain_id=chain_id, clock=clock),
        keyring=keyring or Keyring(),
    )
    app = FastAPI(
        title="carpay",
        version="1",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.platform = platform
    install_problem_handlers(app)
    routers = (transfers, payments, merchant_checkout, fines, merchants, outbox, webhooks)
    routers += (policies, vehicles, escrows, vehicle_wallets, api_keys)
    for module in (*routers, ledger):
        app.include_router(module.router, prefix="/v1")
    app.include_router(rpc.router)
    _publish_problem_schema(app)
    return app


def _publish_problem_schema(app: FastAPI) -> None:
    """Add the Problem schema the problem responses refer to, and drop FastAPI's own 422."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in problem.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components["Problem"] = problem
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    response = operation.get("responses", {}).get("422")
                    if response is not None:
                        response["description"] = "The request is invalid"
                        response["content"] = {
                            PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                        }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
