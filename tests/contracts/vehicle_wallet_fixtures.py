"""Fixtures and helpers shared by the vehicle wallet tests: a deployed world and signing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data

from carpay.chain import Chain, build
from carpay.testing.signing import Domain, Signature
from tests.contracts.checkout_fixtures import INVOICE_TYPES, latest_timestamp
from tests.contracts.vehicle_fixtures import VINS, deploy_vehicles

#: What each dev account plays in these tests (OWNER and REGISTRAR as in vehicle_fixtures).
OWNER, REGISTRAR, DEVICE, NEW_DEVICE, ALICE, BOB, FUEL, DEALER, PAYOUT, TREASURY = range(10)
#: Merchant categories, numbered as in merchant_registry.vy.
DEALER_CATEGORY, FUEL_CATEGORY, PARKING_CATEGORY = 0, 2, 5
#: The fee tier of both merchants, in basis points.
FEE_BPS = 250
#: The currency token's EIP-712 name and version.
TOKEN_NAME, TOKEN_VERSION = "Carpay Euro", "2"
#: What the wallet holds after deployment.
FUNDS = 10_000 * 10**6
#: The ERC-1271 answers.
MAGIC, INVALID = bytes.fromhex("1626ba7e"), bytes.fromhex("ffffffff")

_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
WALLET_MESSAGE_TYPES = {"VehicleWalletMessage": [{"name": "hash", "type": "bytes32"}]}


def typed_digest(domain: Domain, types: dict[str, Any], message: dict[str, Any]) -> bytes:
    """The EIP-712 digest of ``message`` (the one type in ``types``) in ``domain``."""
    primary = next(iter(types))
    full = {
        "types": {"EIP712Domain": _DOMAIN_FIELDS, **types},
        "primaryType": primary,
        "domain": domain.as_dict(),
        "message": message,
    }
    return _hash_eip191_message(encode_typed_data(full_message=full))


def sign_hash(signer: Any, digest: bytes) -> Signature:
    """``signer``'s raw secp256k1 signature of ``digest``."""
    signed = Account.unsafe_sign_hash(digest, signer.key)
    return Signature(signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big"))


@dataclass
class WalletWorld:
    """Merchant registry (FUEL a fuel station, DEALER a dealer, both paid out to PAYOUT), checkout,
    a currency token, a vehicle registry whose title ``title`` ALICE holds, and that vehicle's
    wallet with device key DEVICE, holding ``FUNDS`` and nothing allowed yet."""

    chain: Chain
    accounts: list
    merchants: Any
    checkout: Any
    token: Any
    vehicles: Any
    title: int
    wallet: Any

    def __getitem__(self, role: int) -> Any:
        return self.accounts[role]

    @property
    def f(self) -> Any:
        return self.wallet.functions

    def balance(self, who: Any) -> int:
        return self.token.functions.balanceOf(getattr(who, "address", who)).call()

    def allow(
        self, category: int, daily: int, per_payment: int, *, token: str | None = None
    ) -> None:
        """As ALICE: allow ``category`` with these limits (of the currency token by default)."""
        alice, f = self[ALICE], self.f
        self.chain.transact(alice, f.allowCategory(category, True))
        self.chain.transact(
            alice, f.setLimits(token or self.token.address, category, daily, per_payment)
        )

    def invoice(
        self,
        amount: int,
        *,
        invoice_id: int = 1,
        merchant: int = FUEL,
        token: str | None = None,
        expiry: int | None = None,
        payer: str | None = None,
    ) -> tuple:
        """An invoice to the wallet (expiry default: an hour from the last block)."""
        return (
            self[merchant].address,
            amount,
            token or self.token.address,
            invoice_id.to_bytes(32, "big"),
            latest_timestamp(self.chain) + 3600 if expiry is None else expiry,
            payer or self.wallet.address,
        )

    def sign_invoice(self, invoice: tuple, signer: int | None = None) -> bytes:
        """The merchant's ``r ‖ s ‖ v`` signature of the invoice in checkout's domain."""
        fields = ("merchant", "amount", "token", "invoiceId", "expiry", "payer")
        message = dict(zip(fields, invoice, strict=True))
        digest = typed_digest(Domain.of(self.checkout), INVOICE_TYPES, message)
        who = self[signer if signer is not None else _role_of(self, invoice[0])]
        return sign_hash(who, digest).to_bytes()

    def pay(self, amount: int, *, invoice_id: int = 1, merchant: int = FUEL, **kw: Any) -> Any:
        """The wallet's ``pay`` call of a fresh signed invoice (to send or to expect refused)."""
        invoice = self.invoice(amount, invoice_id=invoice_id, merchant=merchant, **kw)
        return self.f.pay(invoice, self.sign_invoice(invoice))

    def hold(self, amount: int, *, merchant: int = FUEL, salt: int = 1, payer: str | None = None):
        """A hold of the wallet's (deadline: an hour from the last block)."""
        return (
            payer or self.wallet.address,
            self[merchant].address,
            self.token.address,
            amount,
            latest_timestamp(self.chain) + 3600,
            salt.to_bytes(32, "big"),
        )

    def wallet_signature(self, signer: Any, digest: bytes) -> Signature:
        """``signer``'s signature of ``digest`` as the wallet takes it: of its replay-safe hash."""
        safe = typed_digest(Domain.of(self.wallet), WALLET_MESSAGE_TYPES, {"hash": digest})
        return sign_hash(signer, safe)


def _role_of(world: WalletWorld, address: str) -> int:
    return next(i for i, a in enumerate(world.accounts) if a.address == address)


def deploy_wallet_world(chain: Chain, accounts: list) -> WalletWorld:
    """Deploy and wire the contracts of a `WalletWorld`."""
    owner = accounts[OWNER]
    merchants = chain.contract(
        "merchant_registry",
        chain.deploy("merchant_registry", accounts[TREASURY].address, sender=owner),
    )
    checkout = chain.contract("checkout", chain.deploy("checkout", merchants.address, sender=owner))
    token = chain.contract(
        "currency_token",
        chain.deploy("currency_token", TOKEN_NAME, "cEUR", "EUR", TOKEN_VERSION, sender=owner),
    )
    vehicles = deploy_vehicles(chain, accounts)
    title = vehicles.mint(VINS[0], accounts[ALICE].address)
    wallet = chain.contract(
        "vehicle_wallet",
        chain.deploy(
            "vehicle_wallet",
            vehicles.registry.address,
            title,
            merchants.address,
            checkout.address,
            accounts[DEVICE].address,
            sender=owner,
        ),
    )
    payout = accounts[PAYOUT].address
    send = [
        (
            owner,
            merchants.functions.registerMerchant(
                accounts[FUEL].address, FUEL_CATEGORY, payout, FEE_BPS
            ),
        ),
        (
            owner,
            merchants.functions.registerMerchant(
                accounts[DEALER].address, DEALER_CATEGORY, payout, FEE_BPS
            ),
        ),
        (owner, token.functions.configureMinter(owner.address, 2**200)),
    ]
    chain.transact_all(send)  # mined first: the mint needs the minter
    chain.transact(owner, token.functions.mint(wallet.address, FUNDS))
    return WalletWorld(
        chain, accounts, merchants, checkout, token, vehicles.registry, title, wallet
    )


def deploy_factory(chain: Chain, world: WalletWorld) -> tuple[Any, str]:
    """A vehicle wallet factory bound to ``world``'s contracts, and its blueprint's address."""
    owner = world.accounts[OWNER]
    blueprint = chain.deploy(build.blueprint(build.contract("vehicle_wallet")), sender=owner)
    factory = chain.deploy(
        "vehicle_wallet_factory",
        blueprint,
        world.vehicles.address,
        world.merchants.address,
        world.checkout.address,
        sender=owner,
    )
    return chain.contract("vehicle_wallet_factory", factory), blueprint
