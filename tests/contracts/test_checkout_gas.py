"""Gas of checkout's operations against a plain ERC-20 transfer, measured on both nodes.

Run with ``-s`` to see the table. A batch of 100 must cost at most 0.45x a plain transfer per
payment. Paying an invoice directly stays above the 1.5x aim: besides the transaction's 21,000
it writes a new payment record (22,100, what lets a refund be checked), recovers the merchant's
signature (3,000), reads the registry (a cold account and two cold words) and makes two token
transfers from the payer (the net to the payout and the fee to the treasury), so the bound
below only guards against regressions.
"""

from __future__ import annotations

import pytest
from eth_account import Account

from carpay.chain import compile_contract
from tests.contracts.checkout_fixtures import (
    CONTRACTS,
    MERCHANT,
    OWNER,
    PAYER,
    PAYER2,
    PAYOUT,
    RELAYER,
    deploy_world,
)


def gas(w, sender, fn) -> int:
    return w.chain.transact(sender, fn)["gasUsed"]


@pytest.fixture
def w(chain, accounts):
    return deploy_world(chain, accounts)


def test_gas_per_operation(w, request):
    c = w.checkout.functions
    plain_c = compile_contract(CONTRACTS / "plain_erc20.vy")
    plain = w.chain.contract(plain_c, w.plain.address)
    # A plain transfer between two holders; the sender keeps a balance.
    gas(w, w[PAYER], plain.functions.transfer(w[PAYER2].address, 1))
    transfer = gas(w, w[PAYER], plain.functions.transfer(w[PAYER2].address, 1))

    # Steady state: payout and treasury already hold tokens.
    first = w.invoice(1_000_000, invoice_id=1)
    gas(w, w[PAYER], c.payInvoice(first, w.sign_invoice(first)))
    invoice = w.invoice(1_000_000, invoice_id=2)
    direct = gas(w, w[PAYER], c.payInvoice(invoice, w.sign_invoice(invoice)))
    named = w.invoice(1_000_000, invoice_id=3, payer=w[PAYER].address)
    auth = w.receive_authorization(w[PAYER], 1_000_000, c.invoiceHash(named).call())
    gasless = gas(
        w,
        w[RELAYER],
        c.payInvoiceWithAuthorization(named, w.sign_invoice(named), w[PAYER].address, *auth),
    )
    w.chain.transact(w[OWNER], w.token.functions.mint(w[MERCHANT].address, 10**9))
    w.chain.transact(w[MERCHANT], w.token.functions.approve(w.checkout.address, 2**256 - 1))
    refund = gas(w, w[MERCHANT], c.refund(invoice, w[PAYER].address, 0, 1_000))

    hold = w.hold(5_000_000)
    place = gas(w, w[PAYER], c.placeHold(hold))
    capture = gas(w, w[MERCHANT], c.capture(hold, 1_000_000, False))
    final = gas(w, w[MERCHANT], c.capture(hold, 1_000_000, True))
    hold2 = w.hold(5_000_000, salt=2)
    auth = w.receive_authorization(w[PAYER], 5_000_000, c.holdId(hold2).call())
    place_gasless = gas(w, w[RELAYER], c.placeHoldWithAuthorization(hold2, *auth))
    void = gas(w, w[MERCHANT], c.void(hold2))

    # Distinct payers, each holding tokens, as a real batch has.
    payers = [Account.create() for _ in range(111)]
    for p in payers:
        w.chain.transact(w[OWNER], w.token.functions.mint(p.address, 10**9))
    batch = {}
    start = 0
    for size in (1, 10, 100):
        payments = [
            w.payment(p, w[PAYOUT].address, 1_000_000, start + i)
            for i, p in enumerate(payers[start : start + size])
        ]
        start += size
        fn = c.settleBatch(w.token.address, w[MERCHANT].address, payments)
        batch[size] = gas(w, w[RELAYER], fn) / size

    rows = {
        "plain ERC-20 transfer": transfer,
        "payInvoice (direct)": direct,
        "payInvoiceWithAuthorization": gasless,
        "refund (partial)": refund,
        "placeHold (direct)": place,
        "placeHoldWithAuthorization": place_gasless,
        "capture (partial)": capture,
        "capture (final, returns rest)": final,
        "void": void,
        **{f"settleBatch per payment, n={n}": g for n, g in batch.items()},
    }
    node = request.node.callspec.params.get("node_url", "?")
    print(f"\n--- checkout gas ({node}) ---")
    for name, used in rows.items():
        print(f"{name:34s} {used:10.0f}  {used / transfer:5.2f}x transfer")
    assert batch[100] <= 0.45 * transfer
    assert direct <= 2.9 * transfer  # the 1.5x target is out of reach: see the module docstring
