"""Fixtures and helpers shared by the insurance tests: a deployed world of insurer, vehicle and
policyholders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from carpay.chain import Chain
from tests.contracts.checkout_fixtures import latest_timestamp
from tests.contracts.vehicle_fixtures import (
    ALICE,
    AUTHORITY,
    BOB,
    OWNER,
    PAYOUT,
    TREASURY,
    Vehicles,
    deploy_vehicles,
)

#: The insurer (an active merchant of category 1, paid out to accounts[PAYOUT]).
INSURER = AUTHORITY
INSURER_CATEGORY = 1
#: The insurer's fee tier: 1.5%.
FEE_BPS = 150
#: The token's EIP-712 name and version.
TOKEN_NAME, TOKEN_VERSION = "Carpay Euro", "2"
#: Minted to ALICE, BOB and the insurer.
FUNDS = 1_000_000 * 10**6
#: The premium of most tests: 600.00.
PREMIUM = 600 * 10**6
#: Policy statuses.
NONE, OFFERED, ACTIVE, LAPSED, CANCELLED, WITHDRAWN = range(6)

POLICY_FIELDS = (
    "insurer",
    "title",
    "token",
    "premium",
    "term",
    "grace",
    "refund_bps",
    "holder",
    "max_premium",
    "start",
    "paid_through",
    "status",
)

ACCEPTANCE_TYPES = {
    "PolicyAcceptance": [
        {"name": "policyId", "type": "uint256"},
        {"name": "holder", "type": "address"},
        {"name": "maxPremium", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}


@dataclass
class Insurance:
    """Merchant registry (the insurer registered, fee `FEE_BPS`, treasury accounts[TREASURY]),
    vehicle registry, a currency token that ALICE, BOB and the insurer hold and have approved
    to the insurance contract, and the insurance contract."""

    chain: Chain
    accounts: list
    merchants: Any
    vehicles: Vehicles
    token: Any
    insurance: Any

    def __getitem__(self, role: int) -> Any:
        return self.accounts[role]

    @property
    def f(self) -> Any:
        return self.insurance.functions

    def balance(self, who: Any) -> int:
        return self.token.functions.balanceOf(getattr(who, "address", who)).call()

    def policy(self, policy_id: int) -> dict[str, Any]:
        return dict(zip(POLICY_FIELDS, self.f.policy(policy_id).call(), strict=True))

    def offer(
        self,
        title: int,
        premium: int = PREMIUM,
        *,
        term: int = 3600,
        grace: int = 600,
        refund_bps: int = 10_000,
        expiry: int | None = None,
        insurer: int = INSURER,
        token: str | None = None,
    ) -> int:
        """Offer a policy (expiry default: an hour from the last block); return its id."""
        expiry = latest_timestamp(self.chain) + 3600 if expiry is None else expiry
        fn = self.f.offerPolicy(
            title, token or self.token.address, premium, term, grace, refund_bps, expiry
        )
        self.chain.transact(self[insurer], fn)
        return self.f.policyCount().call()

    def accept(self, policy_id: int, max_premium: int | None = None, holder: int = ALICE) -> Any:
        """Accept as ``holder`` (max default: the policy's premium); return the receipt."""
        if max_premium is None:
            max_premium = self.policy(policy_id)["premium"]
        return self.chain.transact(self[holder], self.f.accept(policy_id, max_premium))

    def sign_acceptance(
        self,
        policy_id: int,
        max_premium: int,
        *,
        signer: Any = None,
        holder: str | None = None,
        nonce: int | None = None,
        deadline: int | None = None,
    ) -> tuple[int, bytes]:
        """(deadline, signature) of a ``PolicyAcceptance`` (an hour from the last block)."""
        signer = signer or self[ALICE]
        holder = holder or signer.address
        deadline = latest_timestamp(self.chain) + 3600 if deadline is None else deadline
        nonce = self.f.nonces(holder).call() if nonce is None else nonce
        domain = {
            "name": "carpay insurance",
            "version": "1",
            "chainId": self.chain.chain_id,
            "verifyingContract": self.insurance.address,
        }
        message = {
            "policyId": policy_id,
            "holder": holder,
            "maxPremium": max_premium,
            "nonce": nonce,
            "deadline": deadline,
        }
        signed = signer.sign_typed_data(domain, ACCEPTANCE_TYPES, message)
        return deadline, bytes(signed.signature)


def deploy_insurance(chain: Chain, accounts: list, *, fee_bps: int = FEE_BPS) -> Insurance:
    """Deploy and wire the contracts of an `Insurance` world."""
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
    insurance = chain.contract(
        "insurance",
        chain.deploy("insurance", merchants.address, vehicles.registry.address, sender=owner),
    )
    send = [
        (
            owner,
            merchants.functions.registerMerchant(
                accounts[INSURER].address, INSURER_CATEGORY, accounts[PAYOUT].address, fee_bps
            ),
        ),
        (owner, token.functions.configureMinter(owner.address, 2**200)),
    ]
    chain.transact_all(send)  # mined first: the mints below need the minter
    send = []
    for party in (accounts[ALICE], accounts[BOB], accounts[INSURER]):
        send.append((owner, token.functions.mint(party.address, FUNDS)))
        send.append((party, token.functions.approve(insurance.address, 2**256 - 1)))
    chain.transact_all(send)
    return Insurance(chain, accounts, merchants, vehicles, token, insurance)
