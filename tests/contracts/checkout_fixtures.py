"""Fixtures and helpers shared by the merchant registry and checkout tests."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3.logs import DISCARD as _DISCARD

from carpay.chain import Chain, compile_contract
from carpay.errors import TransactionReverted
from carpay.services.checkout import INVOICE_FIELDS, RECEIVE_FIELDS
from carpay.testing.signing import TYPES

CONTRACTS = Path(__file__).resolve().parent

ZERO = "0x" + "00" * 20


def reverts(chain: Chain, sender: Any, fn: Any) -> str | None:
    """The revert reason of sending ``fn`` from ``sender``; fails if it does not revert."""
    try:
        chain.transact(sender, fn)
    except TransactionReverted as exc:
        return exc.reason
    raise AssertionError("the transaction did not revert")


def events(chain: Chain, receipt: Any, contract: Any, name: str) -> list[dict[str, Any]]:
    """The decoded ``name`` events ``contract`` emitted in ``receipt``, as plain dicts."""
    event = getattr(contract.events, name)()
    found = event.process_receipt(receipt, errors=_DISCARD)
    return [dict(e["args"]) for e in found if e["address"] == contract.address]


def latest_timestamp(chain: Chain) -> int:
    """The timestamp of the latest block."""
    return chain.w3.eth.get_block("latest")["timestamp"]


#: Init code that returns ``block.timestamp`` (TIMESTAMP PUSH1 0 MSTORE PUSH1 32 PUSH1 0
#: RETURN): run with ``eth_call``, the time a node runs calls at a block at. anvil runs them at
#: the block's timestamp; the embedded node in a block on top of it, at the wall clock or a
#: second after the block, whichever is later.
CLOCK = "0x4260005260206000f3"


def next_block_time(chain: Chain) -> int:
    """The timestamp of a block mined now, as the node runs calls in the next block
    (``pending``): what a deadline a few seconds away must be counted from, since a slow
    step can leave the latest block seconds behind."""
    (answer,) = chain.batch([("eth_call", [{"data": CLOCK}, "pending"])])
    return int(answer, 16)


def advance_past(chain: Chain, timestamp: int, sender: Any) -> None:
    """Mine blocks until the latest one is later than ``timestamp``.

    anvil moves its clock on request (``evm_increaseTime``); the embedded node has no such
    method, but gives each block a timestamp above its parent's, so empty transfers move it.
    """
    gap = timestamp - latest_timestamp(chain) + 1
    if gap > 0:
        # A node without the method answers an error, and the loop below does the work.
        with contextlib.suppress(Exception):
            chain.w3.provider.make_request("evm_increaseTime", [gap])
    while latest_timestamp(chain) <= timestamp:
        chain.transact(sender, sender.address, b"", gas=21_000)


# -- a deployed set of money contracts ------------------------------------------------------

#: What each dev account plays in the checkout tests.
OWNER, TREASURY, MERCHANT, PAYOUT, PAYER, PAYER2, RELAYER, STRANGER = range(8)
#: The token's EIP-712 domain name and version.
TOKEN_NAME, TOKEN_VERSION = "Carpay Euro", "2"
#: Minted to each payer at deployment.
FUNDS = 1_000_000 * 10**6

INVOICE_TYPES = {"Invoice": INVOICE_FIELDS}
RECEIVE_TYPES = {"ReceiveWithAuthorization": RECEIVE_FIELDS}
PAYMENT_TYPES = {"PaymentAuthorization": TYPES["PaymentAuthorization"]}


@dataclass
class World:
    """Registry, checkout, a currency token (checkout its settler) and a plain ERC-20."""

    chain: Chain
    accounts: list
    registry: Any
    checkout: Any
    token: Any
    plain: Any

    def __getitem__(self, role: int) -> Any:
        return self.accounts[role]

    def domain(self, contract: Any, name: str, version: str) -> dict[str, Any]:
        return {
            "name": name,
            "version": version,
            "chainId": self.chain.chain_id,
            "verifyingContract": contract.address,
        }

    def invoice(
        self,
        amount: int,
        *,
        invoice_id: bytes | int = 1,
        merchant: str | None = None,
        token: str | None = None,
        expiry: int | None = None,
        payer: str = ZERO,
    ) -> tuple:
        """An invoice tuple as checkout takes it (expiry default: an hour from the last block)."""
        if isinstance(invoice_id, int):
            invoice_id = invoice_id.to_bytes(32, "big")
        return (
            merchant or self[MERCHANT].address,
            amount,
            token or self.token.address,
            invoice_id,
            latest_timestamp(self.chain) + 3600 if expiry is None else expiry,
            payer,
        )

    def sign_invoice(self, invoice: tuple, signer: Any = None) -> bytes:
        """The merchant's ``r ‖ s ‖ v`` signature of the invoice's EIP-712 digest."""
        message = dict(
            zip(
                ("merchant", "amount", "token", "invoiceId", "expiry", "payer"),
                invoice,
                strict=True,
            )
        )
        domain = self.domain(self.checkout, "carpay checkout", "1")
        signed = (signer or self[MERCHANT]).sign_typed_data(domain, INVOICE_TYPES, message)
        return bytes(signed.signature)

    def hold(
        self,
        amount: int,
        *,
        payer: Any = None,
        merchant: str | None = None,
        token: str | None = None,
        deadline: int | None = None,
        salt: int = 1,
    ) -> tuple:
        """A hold tuple as checkout takes it (deadline default: an hour from the last block)."""
        return (
            (payer or self[PAYER]).address,
            merchant or self[MERCHANT].address,
            token or self.token.address,
            amount,
            latest_timestamp(self.chain) + 3600 if deadline is None else deadline,
            salt.to_bytes(32, "big"),
        )

    def receive_authorization(
        self, payer: Any, value: int, nonce: bytes, *, valid_before: int | None = None
    ) -> tuple:
        """(validAfter, validBefore, v, r, s): ``payer`` lets checkout receive ``value``."""
        valid_before = latest_timestamp(self.chain) + 3600 if valid_before is None else valid_before
        message = {
            "from": payer.address,
            "to": self.checkout.address,
            "value": value,
            "validAfter": 0,
            "validBefore": valid_before,
            "nonce": nonce,
        }
        domain = self.domain(self.token, TOKEN_NAME, TOKEN_VERSION)
        s = payer.sign_typed_data(domain, RECEIVE_TYPES, message)
        return 0, valid_before, s.v, s.r.to_bytes(32, "big"), s.s.to_bytes(32, "big")

    def payment(
        self, payer: Any, to: str, value: int, nonce: int, *, valid_before: int | None = None
    ) -> tuple:
        """A signed Payment tuple for ``settleBatch``."""
        valid_before = latest_timestamp(self.chain) + 3600 if valid_before is None else valid_before
        message = {
            "from": payer.address,
            "to": to,
            "value": value,
            "nonce": nonce,
            "validBefore": valid_before,
        }
        domain = self.domain(self.token, TOKEN_NAME, TOKEN_VERSION)
        s = payer.sign_typed_data(domain, PAYMENT_TYPES, message)
        return (
            payer.address,
            value,
            nonce,
            valid_before,
            s.v,
            s.r.to_bytes(32, "big"),
            s.s.to_bytes(32, "big"),
        )

    def balance(self, who: Any, token: Any = None) -> int:
        return (token or self.token).functions.balanceOf(getattr(who, "address", who)).call()


def deploy_world(chain: Chain, accounts: list, *, fee_bps: int = 250) -> World:
    """Deploy fresh contracts; register accounts[MERCHANT] (payout accounts[PAYOUT]); fund payers.

    The payers hold ``FUNDS`` of the currency token and approve checkout for all of it.
    """
    owner = accounts[OWNER]
    registry = chain.contract(
        "merchant_registry",
        chain.deploy("merchant_registry", accounts[TREASURY].address, sender=owner),
    )
    checkout = chain.contract("checkout", chain.deploy("checkout", registry.address, sender=owner))
    token = chain.contract(
        "currency_token",
        chain.deploy("currency_token", TOKEN_NAME, "cEUR", "EUR", TOKEN_VERSION, sender=owner),
    )
    plain = chain.contract(
        compile_contract(CONTRACTS / "plain_erc20.vy"),
        chain.deploy(compile_contract(CONTRACTS / "plain_erc20.vy"), sender=owner),
    )
    send = [
        (
            owner,
            registry.functions.registerMerchant(
                accounts[MERCHANT].address, 2, accounts[PAYOUT].address, fee_bps
            ),
        ),
        (owner, token.functions.configureSettler(checkout.address, True)),
        (owner, token.functions.configureMinter(owner.address, 2**200)),
    ]
    chain.transact_all(send)  # mined first: the mints below need the minter
    send = []
    for payer in (accounts[PAYER], accounts[PAYER2]):
        send.append((owner, token.functions.mint(payer.address, FUNDS)))
        send.append((payer, token.functions.approve(checkout.address, 2**256 - 1)))
        send.append((owner, plain.functions.transfer(payer.address, FUNDS)))
        send.append((payer, plain.functions.approve(checkout.address, 2**256 - 1)))
    chain.transact_all(send)
    return World(chain, accounts, registry, checkout, token, plain)
