"""Fixtures and helpers shared by the vehicle escrow tests: a deployed sale world."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from carpay.chain import Chain
from tests.contracts.checkout_fixtures import latest_timestamp
from tests.contracts.vehicle_fixtures import (
    ALICE,
    AUTHORITY,
    BOB,
    LENDER,
    OWNER,
    REGISTRAR,
    TREASURY,
    VINS,
    Vehicles,
    deploy_vehicles,
)

#: What each dev account plays in the escrow tests (on top of vehicle_fixtures' roles).
SELLER, BUYER, ARBITER = ALICE, BOB, AUTHORITY
#: The platform fee of the escrow these tests deploy: 2.5%.
FEE_BPS = 250
#: The token's EIP-712 name and version.
TOKEN_NAME, TOKEN_VERSION = "Carpay Euro", "2"
#: Minted to the buyer and the seller.
FUNDS = 1_000_000 * 10**6
#: The price of the car and the lien's payoff in most tests: 30,000.00 and 12,000.00.
PRICE = 30_000 * 10**6
PAYOFF = 12_000 * 10**6
#: The state bits of an escrow.
FUNDED, DEPOSITED, DISPUTED, SETTLED, UNWOUND = 1, 2, 4, 8, 16

LIEN_PAYOFF_TYPES = {
    "LienPayoff": [
        {"name": "title", "type": "uint256"},
        {"name": "lender", "type": "address"},
        {"name": "payoff", "type": "uint256"},
        {"name": "escrowId", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}


@dataclass
class Sales:
    """Merchant registry (its treasury accounts[TREASURY]), vehicle registry (the escrow one of
    its registrars), a currency token that SELLER and BUYER hold and have approved, and the
    escrow (fee `FEE_BPS`), for which SELLER and BUYER approved all their titles."""

    chain: Chain
    accounts: list
    merchants: Any
    vehicles: Vehicles
    token: Any
    escrow: Any

    def __getitem__(self, role: int) -> Any:
        return self.accounts[role]

    @property
    def f(self) -> Any:
        return self.escrow.functions

    @property
    def registry(self) -> Any:
        return self.vehicles.registry

    def balance(self, who: Any) -> int:
        return self.token.functions.balanceOf(getattr(who, "address", who)).call()

    def owner_of(self, title: int) -> str:
        return self.registry.functions.ownerOf(title).call()

    def lien_of(self, title: int) -> list:
        return self.registry.functions.lienOf(title).call()

    def record_lien(self, title: int, payoff: int = PAYOFF, lender: str | None = None) -> None:
        fn = self.registry.functions.recordLien(title, lender or self[LENDER].address, payoff)
        self.chain.transact(self[REGISTRAR], fn)

    def create(
        self,
        title: int,
        *,
        price: int = PRICE,
        deadline: int | None = None,
        seller: int = SELLER,
        buyer: int = BUYER,
        arbiter: int = ARBITER,
        token: str | None = None,
    ) -> int:
        """Open an escrow (deadline default: an hour from the last block); return its id."""
        deadline = latest_timestamp(self.chain) + 3600 if deadline is None else deadline
        fn = self.f.createEscrow(
            title,
            self[buyer].address,
            token or self.token.address,
            price,
            deadline,
            self[arbiter].address,
        )
        self.chain.transact(self[seller], fn)
        return self.f.escrowCount().call()

    def sign_payoff(
        self,
        title: int,
        escrow_id: int,
        payoff: int = PAYOFF,
        *,
        valid_before: int | None = None,
        signer: Any = None,
        lender: str | None = None,
    ) -> tuple[int, int, bytes]:
        """``depositTitle``'s arguments after the id: the lender's signed ``LienPayoff``
        (valid for an hour from the last block by default)."""
        signer = signer or self[LENDER]
        valid_before = latest_timestamp(self.chain) + 3600 if valid_before is None else valid_before
        domain = {
            "name": "carpay vehicle escrow",
            "version": "1",
            "chainId": self.chain.chain_id,
            "verifyingContract": self.escrow.address,
        }
        message = {
            "title": title,
            "lender": lender or signer.address,
            "payoff": payoff,
            "escrowId": escrow_id,
            "deadline": valid_before,
        }
        signed = signer.sign_typed_data(domain, LIEN_PAYOFF_TYPES, message)
        return payoff, valid_before, bytes(signed.signature)

    def deposit(self, escrow_id: int, *lien: Any, seller: int = SELLER) -> Any:
        return self.chain.transact(self[seller], self.f.depositTitle(escrow_id, *lien))

    def fund(self, escrow_id: int, buyer: int = BUYER) -> Any:
        return self.chain.transact(self[buyer], self.f.fund(escrow_id))

    def state(self, escrow_id: int) -> int:
        return self.f.escrow(escrow_id).call()[-1]


def deploy_sales(chain: Chain, accounts: list, *, fee_bps: int = FEE_BPS) -> Sales:
    """Deploy and wire the contracts of a `Sales` world; the escrow is a registrar."""
    owner = accounts[OWNER]
    merchants = chain.contract(
        "merchant_registry",
        chain.deploy("merchant_registry", accounts[TREASURY].address, sender=owner),
    )
    vehicles = deploy_vehicles(chain, accounts)
    token = chain.contract(
        "currency_token",
        chain.deploy("currency_token", TOKEN_NAME, "cEUR", "EUR", TOKEN_VERSION, sender=owner),
    )
    escrow = chain.contract(
        "vehicle_escrow",
        chain.deploy(
            "vehicle_escrow",
            vehicles.registry.address,
            merchants.address,
            fee_bps,
            sender=owner,
        ),
    )
    send = [
        (owner, vehicles.f.setRegistrar(escrow.address, True)),
        (owner, token.functions.configureMinter(owner.address, 2**200)),
    ]
    chain.transact_all(send)  # mined first: the mints below need the minter
    send = []
    for party in (accounts[SELLER], accounts[BUYER]):
        send.append((owner, token.functions.mint(party.address, FUNDS)))
        send.append((party, token.functions.approve(escrow.address, 2**256 - 1)))
        send.append((party, vehicles.f.setApprovalForAll(escrow.address, True)))
    chain.transact_all(send)
    return Sales(chain, accounts, merchants, vehicles, token, escrow)


def mint_title(sales: Sales, vin: str = VINS[0], owner: int = SELLER) -> int:
    """Mint the title of ``vin`` to ``owner``; return its id."""
    return sales.vehicles.mint(vin, owner)
