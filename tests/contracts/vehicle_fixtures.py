"""Fixtures and helpers shared by the vehicle registry and traffic fines tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import keccak

from carpay.chain import Chain, compile_contract
from tests.contracts.checkout_fixtures import latest_timestamp

CONTRACTS = Path(__file__).resolve().parent

#: What each dev account plays in these tests.
OWNER, REGISTRAR, LENDER, SHOP, ALICE, BOB, STRANGER, AUTHORITY, PAYOUT, TREASURY = range(10)

#: VINs that pass `carpay.services.vin.validate_vin`.
VINS = (
    "1HGCM82633A004352",
    "1M8GDM9AXKP042788",
    "WVWZZZ1JZXW000001",
    "5YJSA1E18HF000337",
    "3VWFE21C04M000001",
)

#: The merchant category of traffic authorities in merchant_registry.vy.
AUTHORITY_CATEGORY = 7
#: The currency token's EIP-712 name and version.
TOKEN_NAME, TOKEN_VERSION = "Carpay Euro", "2"
#: Minted to each vehicle owner in the fines world.
FUNDS = 1_000_000 * 10**6


def title_id(vin: str) -> int:
    """The title id vehicle_registry gives ``vin``: ``uint256(keccak256(vin))``."""
    return int.from_bytes(keccak(text=vin), "big")


def title_receiver() -> Any:
    """The compiled ERC-721 receiver test contract."""
    return compile_contract(CONTRACTS / "title_receiver.vy")


@dataclass
class Vehicles:
    """A deployed vehicle registry: accounts[REGISTRAR] a registrar, accounts[SHOP] a shop."""

    chain: Chain
    accounts: list
    registry: Any

    def __getitem__(self, role: int) -> Any:
        return self.accounts[role]

    @property
    def f(self) -> Any:
        return self.registry.functions

    def mint(self, vin: str = VINS[0], owner: int | str = ALICE) -> int:
        """Mint the title of ``vin`` to ``owner`` (a role or an address) as the registrar."""
        to = self[owner].address if isinstance(owner, int) else owner
        self.chain.transact(self[REGISTRAR], self.f.mintTitle(to, vin))
        return title_id(vin)


def deploy_vehicles(chain: Chain, accounts: list) -> Vehicles:
    """A fresh vehicle registry owned by accounts[OWNER], with its registrar and repair shop."""
    owner = accounts[OWNER]
    address = chain.deploy(
        "vehicle_registry",
        "carpay vehicle titles",
        "TITLE",
        "https://titles.carpay.example/",
        "carpay vehicle registry",
        "1",
        sender=owner,
    )
    registry = chain.contract("vehicle_registry", address)
    chain.transact(owner, registry.functions.setRegistrar(accounts[REGISTRAR].address, True))
    chain.transact(owner, registry.functions.setRepairShop(accounts[SHOP].address, True))
    return Vehicles(chain, accounts, registry)


@dataclass
class Fines:
    """Merchant registry (accounts[AUTHORITY] an authority paid out to accounts[PAYOUT]), a
    vehicle registry, traffic fines and a currency token that ALICE and BOB hold and approved."""

    chain: Chain
    accounts: list
    merchants: Any
    vehicles: Vehicles
    fines: Any
    token: Any

    def __getitem__(self, role: int) -> Any:
        return self.accounts[role]

    @property
    def f(self) -> Any:
        return self.fines.functions

    def balance(self, who: Any) -> int:
        return self.token.functions.balanceOf(getattr(who, "address", who)).call()

    def issue(
        self,
        title: int,
        amount: int = 50 * 10**6,
        *,
        late_fee: int = 10 * 10**6,
        due: int | None = None,
        reason: int = 1,
        authority: int = AUTHORITY,
    ) -> int:
        """Issue a fine (due default: an hour from the last block) and return its id."""
        due = latest_timestamp(self.chain) + 3600 if due is None else due
        fn = self.f.issueFine(title, self.token.address, amount, late_fee, due, reason)
        self.chain.transact(self[authority], fn)
        return self.f.fineCount().call()


def deploy_fines(chain: Chain, accounts: list) -> Fines:
    """Deploy and wire the contracts of a `Fines` world."""
    owner = accounts[OWNER]
    merchants = chain.contract(
        "merchant_registry",
        chain.deploy("merchant_registry", accounts[TREASURY].address, sender=owner),
    )
    vehicles = deploy_vehicles(chain, accounts)
    fines = chain.contract(
        "traffic_fines",
        chain.deploy("traffic_fines", merchants.address, vehicles.registry.address, sender=owner),
    )
    token = chain.contract(
        "currency_token",
        chain.deploy("currency_token", TOKEN_NAME, "cEUR", "EUR", TOKEN_VERSION, sender=owner),
    )
    send = [
        (
            owner,
            merchants.functions.registerMerchant(
                accounts[AUTHORITY].address, AUTHORITY_CATEGORY, accounts[PAYOUT].address, 0
            ),
        ),
        (owner, token.functions.configureMinter(owner.address, 2**200)),
    ]
    chain.transact_all(send)  # mined first: the mints below need the minter
    send = []
    for payer in (accounts[ALICE], accounts[BOB]):
        send.append((owner, token.functions.mint(payer.address, FUNDS)))
        send.append((payer, token.functions.approve(fines.address, 2**256 - 1)))
    chain.transact_all(send)
    return Fines(chain, accounts, merchants, vehicles, fines, token)
