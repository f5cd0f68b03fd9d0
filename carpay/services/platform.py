"""Bring the platform's contracts onto a chain, once, and give a development network demo data.

:func:`deploy_platform` deploys what is missing (a merchant registry, the checkout, one
currency token per currency, the vehicle registry, traffic fines, the vehicle escrow and
insurance) and wires them together: checkout is a settler of every token, the bank gateway a
minter, the escrow a registrar of titles. It is idempotent: a deployment recorded for this
chain (see :meth:`carpay.chain.Chain.deployment`) is reused, so it runs on every start.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount

from carpay.chain import Chain, build, contract
from carpay.errors import DeploymentNotFound, ValidationFailed
from carpay.ledger.indexer import Creates, Watched
from carpay.services.outbox import checksum
from carpay.services.vin import validate_vin

__all__ = [
    "CATEGORIES",
    "CURRENCIES",
    "DEMO_BALANCE",
    "Currency",
    "Platform",
    "currency_tokens",
    "deploy_platform",
    "deployed_address",
    "require_currency",
    "seed_demo",
]

#: Merchant categories, by their number in ``merchant_registry``.
CATEGORIES = (
    "dealer",
    "insurer",
    "fuel",
    "ev_charging",
    "repair",
    "parking",
    "toll",
    "authority",
    "other",
)
#: What every development account holds of each currency with ``--demo``: 10,000.00.
DEMO_BALANCE = 10_000 * 10**6
#: The platform's fee on a vehicle sale by escrow, in basis points (1%).
ESCROW_FEE_BPS = 100
#: What the bank gateway may mint before the master minter raises its allowance.
GATEWAY_ALLOWANCE = 10**9 * 10**6


@dataclass(frozen=True)
class Currency:
    """A fiat currency the platform issues a token for."""

    code: str
    name: str
    symbol: str


CURRENCIES = (
    Currency("EUR", "Carpay Euro", "cEUR"),
    Currency("USD", "Carpay US Dollar", "cUSD"),
)


def currency_tokens(chain: Chain) -> frozenset[str]:
    """The addresses of the platform's currency tokens recorded for ``chain``."""
    return frozenset(
        d.address for name, d in chain.deployments().items() if name.startswith("currency_token:")
    )


def require_currency(token: str, currencies: frozenset[str]) -> str:
    """``token`` checksummed, if it is one of ``currencies``; else :class:`ValidationFailed`."""
    token = checksum(token, "token")
    if token not in currencies:
        raise ValidationFailed(
            "token is not one of the platform's currency tokens",
            errors=[{"loc": ["token"], "msg": "not a currency token"}],
        )
    return token


@dataclass(frozen=True)
class Platform:
    """Where the platform's contracts are on one chain."""

    registry: str
    checkout: str
    tokens: dict[str, str] = field(default_factory=dict)  # currency code -> address
    vehicles: str | None = None
    fines: str | None = None
    escrow: str | None = None
    insurance: str | None = None
    wallets: str | None = None  # the vehicle wallet factory

    def watched(self) -> list[Watched]:
        """The contracts the indexer follows."""
        items = [
            Watched(self.registry, "merchant_registry", contract("merchant_registry").abi),
            Watched(self.checkout, "checkout", contract("checkout").abi),
        ]
        token_abi = contract("currency_token").abi
        items += [Watched(a, f"currency_token:{c}", token_abi) for c, a in self.tokens.items()]
        if self.vehicles:
            items.append(
                Watched(self.vehicles, "vehicle_registry", contract("vehicle_registry").abi)
            )
        if self.fines:
            items.append(Watched(self.fines, "traffic_fines", contract("traffic_fines").abi))
        if self.escrow:
            items.append(Watched(self.escrow, "vehicle_escrow", contract("vehicle_escrow").abi))
        if self.insurance:
            items.append(Watched(self.insurance, "insurance", contract("insurance").abi))
        if self.wallets:
            factory = contract("vehicle_wallet_factory").abi
            wallet = Creates(
                "WalletCreated", "wallet", "vehicle_wallet", contract("vehicle_wallet").abi
            )
            items.append(Watched(self.wallets, "vehicle_wallet_factory", factory, wallet))
        return items


def deployed_address(chain: Chain, name: str) -> str | None:
    """Where ``name`` is recorded as deployed on ``chain``, or None (not deployed yet, or a
    deployment older than the contract)."""
    try:
        return chain.deployment(name).address
    except DeploymentNotFound:
        return None


def deploy_platform(
    chain: Chain,
    owner: LocalAccount,
    *,
    treasury: str,
    gateway: str | None = None,
    currencies: Sequence[Currency] = CURRENCIES,
) -> Platform:
    """The platform on ``chain``, deploying what is not there yet, owned by ``owner``.

    ``treasury`` receives the fees; ``gateway`` (default: ``owner``) is the bank gateway's
    minter address.
    """
    registry = deployed_address(chain, "merchant_registry") or chain.deploy(
        "merchant_registry", treasury, sender=owner
    )
    checkout = deployed_address(chain, "checkout") or chain.deploy(
        "checkout", registry, sender=owner
    )
    tokens = {}
    for currency in currencies:
        name = f"currency_token:{currency.code}"
        address = deployed_address(chain, name)
        if address is None:
            address = chain.deploy(
                "currency_token",
                currency.name,
                currency.symbol,
                currency.code,
                "1",
                sender=owner,
                name=name,
            )
            token = chain.contract("currency_token", address)
            chain.transact(owner, token.functions.configureSettler(checkout, True))
            chain.transact(
                owner, token.functions.configureMinter(gateway or owner.address, GATEWAY_ALLOWANCE)
            )
        tokens[currency.code] = address
    vehicles = deployed_address(chain, "vehicle_registry") or chain.deploy(
        "vehicle_registry",
        "Carpay Vehicle Title",
        "CVT",
        "https://carpay.dev/titles/",
        "carpay vehicle registry",
        "1",
        sender=owner,
    )
    fines = deployed_address(chain, "traffic_fines") or chain.deploy(
        "traffic_fines", registry, vehicles, sender=owner
    )
    escrow = deployed_address(chain, "vehicle_escrow")
    if escrow is None:
        escrow = chain.deploy("vehicle_escrow", vehicles, registry, ESCROW_FEE_BPS, sender=owner)
        # A registrar of titles: it lifts a lien to move the title, and records it again.
        registry_of_titles = chain.contract("vehicle_registry", vehicles)
        chain.transact(owner, registry_of_titles.functions.setRegistrar(escrow, True))
    insurance = deployed_address(chain, "insurance") or chain.deploy(
        "insurance", registry, vehicles, sender=owner
    )
    wallets = deployed_address(chain, "vehicle_wallet_factory")
    if wallets is None:
        blueprint = deployed_address(chain, "vehicle_wallet_blueprint") or chain.deploy(
            build.blueprint(contract("vehicle_wallet")), sender=owner
        )
        wallets = chain.deploy(
            "vehicle_wallet_factory", blueprint, vehicles, registry, checkout, sender=owner
        )
    return Platform(registry, checkout, tokens, vehicles, fines, escrow, insurance, wallets)


def seed_demo(
    chain: Chain,
    platform: Platform,
    owner: LocalAccount,
    *,
    holders: Iterable[str],
    merchants: Sequence[LocalAccount],
    fee_bps: int = 150,
) -> None:
    """Demo data: every holder gets :data:`DEMO_BALANCE` of every currency, and one merchant
    of each category is registered (``merchants[i]`` for ``CATEGORIES[i]``, paid out to
    itself), given a little ether for gas and approving checkout to pull its refunds. Runs
    once: a chain that already has the first merchant is left as it is.
    """
    registry = chain.contract("merchant_registry", platform.registry)
    if registry.functions.isRegistered(merchants[0].address).call():
        return
    holders = list(holders)
    for address in platform.tokens.values():
        token = chain.contract("currency_token", address)
        for holder in holders:
            chain.transact(owner, token.functions.mint(holder, DEMO_BALANCE))
    for category, merchant in enumerate(merchants[: len(CATEGORIES)]):
        register = registry.functions.registerMerchant(
            merchant.address, category, merchant.address, fee_bps
        )
        chain.transact(owner, register)
        chain.transact(owner, merchant.address, value=10**18, gas=21_000)
        for address in platform.tokens.values():
            token = chain.contract("currency_token", address)
            chain.transact(merchant, token.functions.approve(platform.checkout, 2**256 - 1))
    if platform.vehicles and platform.fines:
        _demo_vehicles(chain, platform, owner, holders, merchants)


#: Demo vehicles: valid VINs (ISO 3779; the North-American ones with their check digit).
DEMO_VINS = ("1HGCM82633A004352", "1M8GDM9AXKP042788", "WVWZZZ1JZXW000001")


def _demo_vehicles(
    chain: Chain,
    platform: Platform,
    owner: LocalAccount,
    holders: Sequence[str],
    merchants: Sequence[LocalAccount],
) -> None:
    """Titles for the first holders, a service record by the repair shop, a fine by the
    authority and an insurance offer by the insurer for the first vehicle (the insurer funded
    to pay claims)."""
    vehicles = chain.contract("vehicle_registry", platform.vehicles)
    fines = chain.contract("traffic_fines", platform.fines)
    repair, authority, insurer = (
        merchants[CATEGORIES.index(name)] for name in ("repair", "authority", "insurer")
    )
    chain.transact(owner, vehicles.functions.setRegistrar(owner.address, True))
    chain.transact(owner, vehicles.functions.setRepairShop(repair.address, True))
    titles = []
    for vin, holder in zip(DEMO_VINS, holders, strict=False):
        chain.transact(owner, vehicles.functions.mintTitle(holder, validate_vin(vin)))
        titles.append(vehicles.functions.titleOf(vin).call())
    chain.transact(repair, vehicles.functions.recordService(titles[0], b"\x01" * 32, 42_000))
    due = chain.w3.eth.get_block("latest")["timestamp"] + 30 * 86_400
    eur = platform.tokens.get("EUR") or next(iter(platform.tokens.values()))
    issue = fines.functions.issueFine(titles[0], eur, 60 * 10**6, 20 * 10**6, due, 1)
    chain.transact(authority, issue)
    if platform.insurance:
        insurance = chain.contract("insurance", platform.insurance)
        offer = insurance.functions.offerPolicy(
            titles[0], eur, 480 * 10**6, 365 * 86_400, 30 * 86_400, 10_000, due
        )
        chain.transact(insurer, offer)
        token = chain.contract("currency_token", eur)
        # Claims are paid from the insurer's balance: a little of it, and the approval.
        chain.transact(owner, token.functions.mint(insurer.address, DEMO_BALANCE))
        chain.transact(insurer, token.functions.approve(platform.insurance, 2**256 - 1))
