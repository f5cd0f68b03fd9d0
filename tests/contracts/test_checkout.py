"""checkout.vy: invoices, refunds, holds, batch settlement; every refusal and event; both nodes."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from carpay.errors import TransactionReverted
from tests.contracts.checkout_fixtures import (
    CONTRACTS,
    FUNDS,
    MERCHANT,
    OWNER,
    PAYER,
    PAYER2,
    PAYOUT,
    RELAYER,
    STRANGER,
    TREASURY,
    ZERO,
    advance_past,
    deploy_world,
    events,
    latest_timestamp,
    reverts,
)


@pytest.fixture
def w(chain, accounts):
    """Fresh contracts: merchant at 250 bps, two funded payers that approved checkout."""
    return deploy_world(chain, accounts)


def split(gross: int, bps: int = 250) -> tuple[int, int]:
    fee = gross * bps // 10_000
    return fee, gross - fee


# -- deployment and views -------------------------------------------------------------------


def test_deploy_and_views(w):
    c = w.checkout.functions
    assert c.registry().call() == w.registry.address
    assert c.MAX_BATCH().call() == 128
    assert c.INVOICE_TYPEHASH().call() == keccak(
        b"Invoice(address merchant,uint256 amount,address token,bytes32 invoiceId,"
        b"uint256 expiry,address payer)"
    )
    assert c.HOLD_TYPEHASH().call() == keccak(
        b"Hold(address payer,address merchant,address token,uint256 amount,uint256 deadline,"
        b"bytes32 salt)"
    )
    domain = c.eip712Domain().call()
    assert domain[1:5] == ["carpay checkout", "1", w.chain.chain_id, w.checkout.address]
    invoice = w.invoice(10)
    digest = c.invoiceDigest(invoice).call()
    assert digest == keccak(
        b"\x19\x01" + c.DOMAIN_SEPARATOR().call() + c.invoiceHash(invoice).call()
    )
    assert c.holdState(b"\x01" * 32).call() == [0, 0]


def test_deploy_refuses_zero_registry(chain, accounts):
    with pytest.raises(TransactionReverted) as info:
        chain.deploy("checkout", ZERO, sender=accounts[OWNER])
    assert info.value.reason == "checkout: zero registry"


# -- invoices -------------------------------------------------------------------------------


def test_pay_invoice_splits_the_fee_and_records_the_payment(w):
    gross = 1_234_567
    fee, net = split(gross)
    invoice = w.invoice(gross, invoice_id=7)
    r = w.chain.transact(
        w[PAYER], w.checkout.functions.payInvoice(invoice, w.sign_invoice(invoice))
    )
    assert w.balance(w[PAYOUT]) == net
    assert w.balance(w[TREASURY]) == fee
    assert w.balance(w[PAYER]) == FUNDS - gross
    assert w.balance(w.checkout) == 0
    assert events(w.chain, r, w.checkout, "InvoicePaid") == [
        {
            "invoice_id": invoice[3],
            "payer": w[PAYER].address,
            "merchant": w[MERCHANT].address,
            "token": w.token.address,
            "gross": gross,
            "fee": fee,
            "net": net,
        }
    ]
    invoice_hash = w.checkout.functions.invoiceHash(invoice).call()
    record = w.checkout.functions.payments(w[MERCHANT].address, invoice[3]).call()
    assert record == keccak(
        invoice_hash + bytes(12) + bytes.fromhex(w[PAYER].address[2:]) + bytes(32)
    )


def test_pay_invoice_with_a_plain_erc20_and_zero_fee(w):
    w.chain.transact(w[OWNER], w.registry.functions.setFeeTier(w[MERCHANT].address, 0))
    invoice = w.invoice(500, token=w.plain.address)
    r = w.chain.transact(
        w[PAYER], w.checkout.functions.payInvoice(invoice, w.sign_invoice(invoice))
    )
    assert w.balance(w[PAYOUT], w.plain) == 500
    assert w.balance(w[TREASURY], w.plain) == 0
    assert events(w.chain, r, w.checkout, "InvoicePaid")[0]["fee"] == 0


def test_an_invoice_is_paid_once(w):
    invoice = w.invoice(100)
    sig = w.sign_invoice(invoice)
    w.chain.transact(w[PAYER], w.checkout.functions.payInvoice(invoice, sig))
    for payer in (w[PAYER], w[PAYER2]):
        fn = w.checkout.functions.payInvoice(invoice, sig)
        assert reverts(w.chain, payer, fn) == "checkout: invoice already paid"
    # Another invoice the merchant signed with the same id is the same invoice.
    other = w.invoice(1, invoice_id=invoice[3])
    fn = w.checkout.functions.payInvoice(other, w.sign_invoice(other))
    assert reverts(w.chain, w[PAYER2], fn) == "checkout: invoice already paid"


def test_pay_invoice_refusals(w):
    c = w.checkout.functions
    expired = w.invoice(100, expiry=latest_timestamp(w.chain) - 1)
    assert reverts(w.chain, w[PAYER], c.payInvoice(expired, w.sign_invoice(expired))) == (
        "checkout: invoice expired"
    )
    for_payer2 = w.invoice(100, payer=w[PAYER2].address)
    fn = c.payInvoice(for_payer2, w.sign_invoice(for_payer2))
    assert reverts(w.chain, w[PAYER], fn) == "checkout: not the invoice's payer"
    w.chain.transact(w[PAYER2], fn)  # the named payer may
    zero = w.invoice(0, invoice_id=2)
    assert reverts(w.chain, w[PAYER], c.payInvoice(zero, w.sign_invoice(zero))) == (
        "checkout: zero amount"
    )
    invoice = w.invoice(100, invoice_id=3)
    forged = w.sign_invoice(invoice, signer=w[STRANGER])
    for sig in (forged, b"", b"\x01" * 65, w.sign_invoice(invoice)[:64]):
        assert reverts(w.chain, w[PAYER], c.payInvoice(invoice, sig)) == (
            "checkout: invalid merchant signature"
        )
    tampered = (*invoice[:1], 99, *invoice[2:])
    fn = c.payInvoice(tampered, w.sign_invoice(invoice))
    assert reverts(w.chain, w[PAYER], fn) == "checkout: invalid merchant signature"
    unknown = w.invoice(100, merchant=w[STRANGER].address)
    fn = c.payInvoice(unknown, w.sign_invoice(unknown, signer=w[STRANGER]))
    assert reverts(w.chain, w[PAYER], fn) == "checkout: merchant inactive"
    w.chain.transact(w[OWNER], w.registry.functions.setActive(w[MERCHANT].address, False))
    assert reverts(w.chain, w[PAYER], c.payInvoice(invoice, w.sign_invoice(invoice))) == (
        "checkout: merchant inactive"
    )


def test_pay_invoice_refused_by_the_token_leaves_nothing_recorded(w):
    poor = w[STRANGER]  # holds no tokens
    invoice = w.invoice(100)
    fn = w.checkout.functions.payInvoice(invoice, w.sign_invoice(invoice))
    assert reverts(w.chain, poor, fn) is not None
    assert w.checkout.functions.payments(w[MERCHANT].address, invoice[3]).call() == bytes(32)


def test_gasless_invoice_pulls_with_receive_with_authorization(w):
    gross = 2_000_000
    fee, net = split(gross)
    invoice = w.invoice(gross, payer=w[PAYER].address)
    nonce = w.checkout.functions.invoiceHash(invoice).call()
    auth = w.receive_authorization(w[PAYER], gross, nonce)
    fn = w.checkout.functions.payInvoiceWithAuthorization(
        invoice, w.sign_invoice(invoice), w[PAYER].address, *auth
    )
    r = w.chain.transact(w[RELAYER], fn)
    assert (w.balance(w[PAYOUT]), w.balance(w[TREASURY])) == (net, fee)
    assert w.balance(w.checkout) == 0
    assert w.token.functions.authorizationState(w[PAYER].address, nonce).call()
    paid = events(w.chain, r, w.checkout, "InvoicePaid")
    assert [(e["payer"], e["gross"], e["fee"], e["net"]) for e in paid] == [
        (w[PAYER].address, gross, fee, net)
    ]
    assert reverts(w.chain, w[RELAYER], fn) == "checkout: invoice already paid"


def test_gasless_authorization_pays_only_its_invoice(w):
    c = w.checkout.functions
    first, second = w.invoice(100, invoice_id=1), w.invoice(100, invoice_id=2)
    auth = w.receive_authorization(w[PAYER], 100, c.invoiceHash(first).call())
    # The payer's authorization for the first invoice cannot pay the second ...
    fn = c.payInvoiceWithAuthorization(second, w.sign_invoice(second), w[PAYER].address, *auth)
    assert reverts(w.chain, w[RELAYER], fn) == "currency_token: invalid signature"
    # ... nor can it be spent straight on the token: only checkout can receive it.
    fn = w.token.functions.receiveWithAuthorization(
        w[PAYER].address, w.checkout.address, 100, *auth[:2], c.invoiceHash(first).call(), *auth[2:]
    )
    assert reverts(w.chain, w[RELAYER], fn) == "currency_token: caller is not the payee"
    # Invoice checks come before the token's.
    expired = w.invoice(100, invoice_id=3, expiry=latest_timestamp(w.chain) - 1)
    fn = c.payInvoiceWithAuthorization(expired, w.sign_invoice(expired), w[PAYER].address, *auth)
    assert reverts(w.chain, w[RELAYER], fn) == "checkout: invoice expired"
    named = w.invoice(100, invoice_id=4, payer=w[PAYER2].address)
    fn = c.payInvoiceWithAuthorization(named, w.sign_invoice(named), w[PAYER].address, *auth)
    assert reverts(w.chain, w[RELAYER], fn) == "checkout: not the invoice's payer"


def test_contract_merchant_signs_with_erc1271(w):
    from carpay.chain import compile_contract

    wallet_c = compile_contract(CONTRACTS / "merchant_wallet.vy")
    key = w[STRANGER]
    wallet = w.chain.contract(wallet_c, w.chain.deploy(wallet_c, key.address, sender=w[OWNER]))
    fn = w.registry.functions.registerMerchant(wallet.address, 7, w[PAYOUT].address, 100)
    w.chain.transact(w[OWNER], fn)
    invoice = w.invoice(10_000, merchant=wallet.address)
    sig = w.sign_invoice(invoice, signer=key)
    bad = w.sign_invoice(invoice, signer=w[MERCHANT])
    fn = w.checkout.functions.payInvoice(invoice, bad)
    assert reverts(w.chain, w[PAYER], fn) == "checkout: invalid merchant signature"
    w.chain.transact(w[PAYER], w.checkout.functions.payInvoice(invoice, sig))
    assert w.balance(w[PAYOUT]) == 9_900
    # The wallet refunds through its owner.
    w.chain.transact(
        key,
        wallet.functions.execute(
            w.token.address, _calldata(w.token.functions.approve(w.checkout.address, 10**12))
        ),
    )
    w.chain.transact(w[OWNER], w.token.functions.mint(wallet.address, 500))
    refund = w.checkout.functions.refund(invoice, w[PAYER].address, 0, 500)
    w.chain.transact(key, wallet.functions.execute(w.checkout.address, _calldata(refund)))
    assert w.balance(wallet) == 0
    assert w.balance(w[PAYER]) == FUNDS - 10_000 + 500


def _calldata(fn) -> bytes:
    return bytes.fromhex(fn._encode_transaction_data()[2:])


# -- refunds --------------------------------------------------------------------------------


@pytest.fixture
def paid(w):
    """An invoice of 1,000,000 paid by PAYER; the merchant approved checkout for refunds."""
    invoice = w.invoice(1_000_000, invoice_id=42)
    w.chain.transact(w[PAYER], w.checkout.functions.payInvoice(invoice, w.sign_invoice(invoice)))
    w.chain.transact(w[OWNER], w.token.functions.mint(w[MERCHANT].address, 2_000_000))
    w.chain.transact(w[MERCHANT], w.token.functions.approve(w.checkout.address, 2**256 - 1))
    return invoice


def test_partial_then_full_refund(w, paid):
    c, payer = w.checkout.functions, w[PAYER].address
    r = w.chain.transact(w[MERCHANT], c.refund(paid, payer, 0, 300_000))
    assert events(w.chain, r, w.checkout, "Refunded") == [
        {
            "invoice_id": paid[3],
            "payer": payer,
            "merchant": w[MERCHANT].address,
            "token": w.token.address,
            "amount": 300_000,
            "refunded": 300_000,
        }
    ]
    # A stale record (refunded 0) no longer matches.
    fn = c.refund(paid, payer, 0, 1)
    assert reverts(w.chain, w[MERCHANT], fn) == "checkout: payment record mismatch"
    fn = c.refund(paid, payer, 300_000, 700_001)
    assert reverts(w.chain, w[MERCHANT], fn) == "checkout: refund exceeds payment"
    w.chain.transact(w[MERCHANT], c.refund(paid, payer, 300_000, 700_000))
    assert w.balance(w[PAYER]) == FUNDS
    assert w.balance(w[MERCHANT]) == 1_000_000
    fn = c.refund(paid, payer, 1_000_000, 1)
    assert reverts(w.chain, w[MERCHANT], fn) == "checkout: refund exceeds payment"


def test_refund_refusals(w, paid):
    c, payer = w.checkout.functions, w[PAYER].address
    for intruder in (w[PAYER], w[PAYOUT], w[STRANGER]):
        fn = c.refund(paid, payer, 0, 1)
        assert reverts(w.chain, intruder, fn) == "checkout: caller is not the merchant"
    unpaid = w.invoice(1_000_000, invoice_id=43)
    fn = c.refund(unpaid, payer, 0, 1)
    assert reverts(w.chain, w[MERCHANT], fn) == "checkout: invoice not paid"
    for record in ((paid, w[STRANGER].address, 0), ((*paid[:1], 2_000_000, *paid[2:]), payer, 0)):
        fn = c.refund(*record, 1)
        assert reverts(w.chain, w[MERCHANT], fn) == "checkout: payment record mismatch"
    fn = c.refund(paid, payer, 0, 0)
    assert reverts(w.chain, w[MERCHANT], fn) == "checkout: zero amount"


# -- holds ----------------------------------------------------------------------------------


def place(w, hold, payer=None):
    return w.chain.transact(payer or w[PAYER], w.checkout.functions.placeHold(hold))


def test_place_hold_moves_funds_into_checkout(w):
    hold = w.hold(50_000_000)
    r = place(w, hold)
    hold_id = w.checkout.functions.holdId(hold).call()
    assert w.balance(w.checkout) == 50_000_000
    assert w.checkout.functions.holdState(hold_id).call() == [1, 50_000_000]
    assert events(w.chain, r, w.checkout, "HoldPlaced") == [
        {
            "hold_id": hold_id,
            "payer": w[PAYER].address,
            "merchant": w[MERCHANT].address,
            "token": w.token.address,
            "amount": 50_000_000,
            "deadline": hold[4],
        }
    ]


def test_place_hold_refusals(w):
    c = w.checkout.functions
    hold = w.hold(1_000)
    assert reverts(w.chain, w[PAYER2], c.placeHold(hold)) == "checkout: caller is not the payer"
    assert reverts(w.chain, w[PAYER], c.placeHold(w.hold(0))) == "checkout: zero amount"
    assert reverts(w.chain, w[PAYER], c.placeHold(w.hold(2**255))) == "checkout: amount too large"
    late = w.hold(1_000, deadline=latest_timestamp(w.chain) - 1)
    assert reverts(w.chain, w[PAYER], c.placeHold(late)) == "checkout: deadline passed"
    unknown = w.hold(1_000, merchant=w[STRANGER].address)
    assert reverts(w.chain, w[PAYER], c.placeHold(unknown)) == "checkout: merchant inactive"
    place(w, hold)
    assert reverts(w.chain, w[PAYER], c.placeHold(hold)) == "checkout: hold exists"


def test_gasless_hold(w):
    c = w.checkout.functions
    hold = w.hold(70_000)
    hold_id = c.holdId(hold).call()
    auth = w.receive_authorization(w[PAYER], 70_000, hold_id)
    r = w.chain.transact(w[RELAYER], c.placeHoldWithAuthorization(hold, *auth))
    assert w.balance(w.checkout) == 70_000
    assert len(events(w.chain, r, w.checkout, "HoldPlaced")) == 1
    # The same authorization cannot place another hold.
    other = w.hold(70_000, salt=2)
    fn = c.placeHoldWithAuthorization(other, *auth)
    assert reverts(w.chain, w[RELAYER], fn) == "currency_token: invalid signature"
    assert reverts(w.chain, w[RELAYER], c.placeHoldWithAuthorization(hold, *auth)) == (
        "checkout: hold exists"
    )


def test_partial_captures_then_final_capture_returns_the_rest(w):
    c = w.checkout.functions
    hold = w.hold(100_000)
    hold_id = c.holdId(hold).call()
    place(w, hold)
    r = w.chain.transact(w[MERCHANT], c.capture(hold, 30_000, False))
    fee, net = split(30_000)
    assert events(w.chain, r, w.checkout, "HoldCaptured") == [
        {
            "hold_id": hold_id,
            "payer": w[PAYER].address,
            "merchant": w[MERCHANT].address,
            "gross": 30_000,
            "fee": fee,
            "net": net,
            "remaining": 70_000,
            "returned": 0,
        }
    ]
    assert c.holdState(hold_id).call() == [1, 70_000]
    r = w.chain.transact(w[MERCHANT], c.capture(hold, 20_000, True))
    captured = events(w.chain, r, w.checkout, "HoldCaptured")[0]
    assert (captured["remaining"], captured["returned"]) == (0, 50_000)
    assert c.holdState(hold_id).call() == [2, 0]
    assert w.balance(w.checkout) == 0
    assert w.balance(w[PAYER]) == FUNDS - 50_000
    assert w.balance(w[PAYOUT]) + w.balance(w[TREASURY]) == 50_000
    assert w.balance(w[TREASURY]) == split(30_000)[0] + split(20_000)[0]
    assert reverts(w.chain, w[MERCHANT], c.capture(hold, 1, False)) == "checkout: hold not open"


def test_capturing_everything_closes_the_hold(w):
    c = w.checkout.functions
    hold = w.hold(10_000)
    place(w, hold)
    r = w.chain.transact(w[MERCHANT], c.capture(hold, 10_000, False))
    assert events(w.chain, r, w.checkout, "HoldCaptured")[0]["returned"] == 0
    assert c.holdState(c.holdId(hold).call()).call() == [2, 0]


def test_capture_refusals(w):
    c = w.checkout.functions
    hold = w.hold(10_000, deadline=latest_timestamp(w.chain) + 30)
    assert reverts(w.chain, w[MERCHANT], c.capture(hold, 1, False)) == "checkout: hold not open"
    place(w, hold)
    for intruder in (w[PAYER], w[PAYOUT], w[STRANGER]):
        fn = c.capture(hold, 1, False)
        assert reverts(w.chain, intruder, fn) == "checkout: caller is not the merchant"
    assert reverts(w.chain, w[MERCHANT], c.capture(hold, 0, False)) == "checkout: zero amount"
    assert reverts(w.chain, w[MERCHANT], c.capture(hold, 10_001, True)) == (
        "checkout: capture exceeds hold"
    )
    w.chain.transact(w[OWNER], w.registry.functions.setActive(w[MERCHANT].address, False))
    assert reverts(w.chain, w[MERCHANT], c.capture(hold, 1, False)) == (
        "checkout: merchant inactive"
    )
    w.chain.transact(w[OWNER], w.registry.functions.setActive(w[MERCHANT].address, True))
    advance_past(w.chain, hold[4], w[STRANGER])
    assert reverts(w.chain, w[MERCHANT], c.capture(hold, 1, False)) == "checkout: hold expired"


def test_void_returns_everything(w):
    c = w.checkout.functions
    hold = w.hold(10_000)
    hold_id = c.holdId(hold).call()
    assert reverts(w.chain, w[MERCHANT], c.void(hold)) == "checkout: hold not open"
    place(w, hold)
    w.chain.transact(w[MERCHANT], c.capture(hold, 4_000, False))
    for intruder in (w[PAYER], w[STRANGER]):
        assert reverts(w.chain, intruder, c.void(hold)) == "checkout: caller is not the merchant"
    r = w.chain.transact(w[MERCHANT], c.void(hold))
    assert events(w.chain, r, w.checkout, "HoldVoided") == [
        {
            "hold_id": hold_id,
            "payer": w[PAYER].address,
            "merchant": w[MERCHANT].address,
            "returned": 6_000,
        }
    ]
    assert w.balance(w[PAYER]) == FUNDS - 4_000
    assert w.balance(w.checkout) == 0
    assert reverts(w.chain, w[MERCHANT], c.void(hold)) == "checkout: hold not open"


def test_reclaim_after_the_deadline(w):
    c = w.checkout.functions
    hold = w.hold(10_000, deadline=latest_timestamp(w.chain) + 30)
    hold_id = c.holdId(hold).call()
    assert reverts(w.chain, w[PAYER], c.reclaim(hold)) == "checkout: hold not open"
    place(w, hold)
    assert reverts(w.chain, w[PAYER], c.reclaim(hold)) == "checkout: hold not expired"
    advance_past(w.chain, hold[4], w[STRANGER])
    r = w.chain.transact(w[RELAYER], c.reclaim(hold))  # anyone: the money goes to the payer
    assert events(w.chain, r, w.checkout, "HoldReclaimed") == [
        {
            "hold_id": hold_id,
            "payer": w[PAYER].address,
            "merchant": w[MERCHANT].address,
            "returned": 10_000,
        }
    ]
    assert w.balance(w[PAYER]) == FUNDS
    assert reverts(w.chain, w[PAYER], c.reclaim(hold)) == "checkout: hold not open"
    assert reverts(w.chain, w[PAYER], c.placeHold(hold)) == "checkout: deadline passed"


# -- batch settlement -----------------------------------------------------------------------


def test_settle_batch_pays_the_payout_and_skips_bad_payments(w):
    payout = w[PAYOUT].address
    good = [w.payment(w[PAYER], payout, 1_000_000 + i, i) for i in range(3)]
    forged = w.payment(w[PAYER2], w[STRANGER].address, 5_000, 10)  # signed to another payee
    forged = (forged[0], *forged[1:])
    expired = w.payment(w[PAYER2], payout, 5_000, 11, valid_before=latest_timestamp(w.chain) - 1)
    broke = w.payment(w[STRANGER], payout, 5_000, 12)
    replay = good[0]
    batch = [*good, forged, expired, replay, broke]
    r = w.chain.transact(
        w[RELAYER], w.checkout.functions.settleBatch(w.token.address, w[MERCHANT].address, batch)
    )
    gross = sum(p[1] for p in good)
    fee = sum(split(p[1])[0] for p in good)
    assert w.balance(w[PAYOUT]) == gross - fee
    assert w.balance(w[TREASURY]) == fee
    assert w.balance(w[PAYER]) == FUNDS - gross
    assert w.balance(w[PAYER2]) == FUNDS
    assert events(w.chain, r, w.checkout, "BatchSettled") == [
        {
            "token": w.token.address,
            "merchant": w[MERCHANT].address,
            "payout": payout,
            "settled": 3,
            "skipped": 4,
            "gross": gross,
            "fee": fee,
        }
    ]
    skipped = events(w.chain, r, w.checkout, "PaymentSkipped")
    assert [(e["payer"], e["nonce"], e["status"]) for e in skipped] == [
        (w[PAYER2].address, 10, 1),
        (w[PAYER2].address, 11, 2),
        (w[PAYER].address, 0, 3),
        (w[STRANGER].address, 12, 4),
    ]
    # Submitting the same batch again settles nothing more.
    r = w.chain.transact(
        w[RELAYER], w.checkout.functions.settleBatch(w.token.address, w[MERCHANT].address, good)
    )
    assert events(w.chain, r, w.checkout, "BatchSettled")[0]["settled"] == 0
    assert w.balance(w[PAYOUT]) == gross - fee


def test_settle_batch_refusals(w):
    c, m = w.checkout.functions, w[MERCHANT].address
    assert reverts(w.chain, w[RELAYER], c.settleBatch(w.token.address, m, [])) == (
        "checkout: empty batch"
    )
    payment = w.payment(w[PAYER], w[PAYOUT].address, 100, 1)
    fn = c.settleBatch(w.token.address, w[STRANGER].address, [payment])
    assert reverts(w.chain, w[RELAYER], fn) == "checkout: merchant inactive"
    w.chain.transact(w[OWNER], w.token.functions.configureSettler(w.checkout.address, False))
    fn = c.settleBatch(w.token.address, m, [payment])
    assert reverts(w.chain, w[RELAYER], fn) == "currency_token: caller is not a settler"


# -- re-entrancy ----------------------------------------------------------------------------


def test_a_token_cannot_reenter_checkout(w):
    """A token that calls back during a transfer finds every money-moving function locked."""
    from carpay.chain import compile_contract

    compiled = compile_contract(CONTRACTS / "reentrant_token.vy")
    evil = w.chain.contract(compiled, w.chain.deploy(compiled, sender=w[OWNER]))
    c = w.checkout.functions
    w.chain.transact(w[OWNER], evil.functions.mint(w[PAYER].address, 10**9))
    # An expired hold anyone could reclaim: the call back tries exactly that.
    expired = w.hold(1_000, token=evil.address, deadline=latest_timestamp(w.chain) + 30)
    w.chain.transact(w[PAYER], c.placeHold(expired))
    advance_past(w.chain, expired[4], w[STRANGER])
    w.chain.transact(
        w[OWNER], evil.functions.arm(w.checkout.address, _calldata(c.reclaim(expired)))
    )
    invoice = w.invoice(5_000, token=evil.address)
    w.chain.transact(w[PAYER], c.payInvoice(invoice, w.sign_invoice(invoice)))
    assert evil.functions.attempts().call() == 2  # net and fee
    assert not evil.functions.reentered().call()
    assert w.checkout.functions.holdState(c.holdId(expired).call()).call() == [1, 1_000]
    w.chain.transact(w[OWNER], evil.functions.arm(ZERO, b""))
    w.chain.transact(w[STRANGER], c.reclaim(expired))
    assert evil.functions.balanceOf(w[PAYER].address).call() == 10**9 - 5_000
