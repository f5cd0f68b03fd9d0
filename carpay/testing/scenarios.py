"""Money moving through the platform's contracts, for tests of what sits above them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount

from carpay.chain import Chain
from carpay.services.checkout import INVOICE_FIELDS
from carpay.services.platform import Platform, deploy_platform

__all__ = ["INVOICE_TYPES", "CheckoutScenario", "checkout_scenario", "sign_invoice"]

INVOICE_TYPES = {"Invoice": INVOICE_FIELDS}
_ZERO = "0x" + "00" * 20


def sign_invoice(chain: Chain, checkout: str, merchant: LocalAccount, invoice: tuple) -> bytes:
    """``merchant``'s ``r ‖ s ‖ v`` signature of ``invoice`` in checkout's EIP-712 domain."""
    domain = {
        "name": "carpay checkout",
        "version": "1",
        "chainId": chain.chain_id,
        "verifyingContract": checkout,
    }
    fields = ("merchant", "amount", "token", "invoiceId", "expiry", "payer")
    message = dict(zip(fields, invoice, strict=True))
    return bytes(merchant.sign_typed_data(domain, INVOICE_TYPES, message).signature)


@dataclass(frozen=True)
class CheckoutScenario:
    """What :func:`checkout_scenario` did, to compare the ledger with."""

    platform: Platform
    token: Any
    invoice_id: bytes
    hold_id: bytes
    registered_block: int


def checkout_scenario(
    chain: Chain,
    owner: LocalAccount,
    treasury: LocalAccount,
    merchant: LocalAccount,
    payer: LocalAccount,
) -> CheckoutScenario:
    """Deploy the platform, register ``merchant`` (repair, 1.5% fee), fund ``payer`` with
    1.000000 EUR; the payer pays a 0.200000 invoice of which 0.050000 is refunded, places a
    0.100000 hold that is captured 0.030000 then 0.020000 finally; the fee drops to 0.9%.
    """
    platform = deploy_platform(chain, owner, treasury=treasury.address)
    registry = chain.contract("merchant_registry", platform.registry)
    checkout = chain.contract("checkout", platform.checkout)
    token = chain.contract("currency_token", platform.tokens["EUR"])
    receipt = chain.transact(
        owner, registry.functions.registerMerchant(merchant.address, 4, merchant.address, 150)
    )
    chain.transact(owner, token.functions.mint(payer.address, 1_000_000))
    chain.transact(payer, token.functions.approve(checkout.address, 2**256 - 1))
    chain.transact(merchant, token.functions.approve(checkout.address, 2**256 - 1))
    expiry = chain.w3.eth.get_block("latest")["timestamp"] + 3600
    invoice_id = b"\x07" * 32
    invoice = (merchant.address, 200_000, token.address, invoice_id, expiry, _ZERO)
    signature = sign_invoice(chain, checkout.address, merchant, invoice)
    chain.transact(payer, checkout.functions.payInvoice(invoice, signature))
    chain.transact(merchant, checkout.functions.refund(invoice, payer.address, 0, 50_000))
    hold = (payer.address, merchant.address, token.address, 100_000, expiry, b"\x01" * 32)
    chain.transact(payer, checkout.functions.placeHold(hold))
    chain.transact(merchant, checkout.functions.capture(hold, 30_000, False))
    chain.transact(merchant, checkout.functions.capture(hold, 20_000, True))
    chain.transact(owner, registry.functions.setFeeTier(merchant.address, 90))
    hold_id = checkout.functions.holdId(hold).call()
    return CheckoutScenario(platform, token, invoice_id, hold_id, receipt["blockNumber"])
