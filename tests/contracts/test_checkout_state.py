"""checkout.vy against a Python model: balances, holds and invoices stay consistent.

A hypothesis RuleBasedStateMachine drives fresh contracts per example on both nodes, and after
every step checks: what checkout holds equals the sum of open holds; every balance equals the
model's; the supply equals the sum of balances. Rules check that no invoice is paid twice,
that fee + net == gross in every receipt and that refunds never exceed what was paid. The short
profile runs by default; ``-m slow`` runs the long one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from carpay.errors import TransactionReverted
from tests.contracts import profiles
from tests.contracts.checkout_fixtures import (
    FUNDS,
    MERCHANT,
    OWNER,
    PAYER,
    PAYER2,
    PAYOUT,
    RELAYER,
    STRANGER,
    TREASURY,
    advance_past,
    deploy_world,
    events,
    latest_timestamp,
)

# Shrinking replays whole deployments step by step and takes many minutes on a node; a failure
# is reported with the unshrunk sequence of steps instead, in both profiles.
profiles.register("checkout", short=(3, 15), long=(40, 40), shrink_long=False)

#: What the merchant holds to fund refunds.
MERCHANT_FUNDS = 10**12
PAYERS = (PAYER, PAYER2, STRANGER)  # STRANGER holds nothing: the token refuses its payments
amounts = st.one_of(st.integers(1, 10**7), st.just(3 * FUNDS))


@dataclass
class Paid:
    invoice: tuple
    payer: str
    gross: int
    refunded: int = 0


@dataclass
class OpenHold:
    hold: tuple
    remaining: int


class CheckoutMachine(RuleBasedStateMachine):
    """The contracts and the model, side by side."""

    chain = None
    accounts = None

    def __init__(self) -> None:
        super().__init__()
        self.w = deploy_world(self.chain, self.accounts)
        w = self.w
        w.chain.transact(w[OWNER], w.token.functions.mint(w[MERCHANT].address, MERCHANT_FUNDS))
        w.chain.transact(w[MERCHANT], w.token.functions.approve(w.checkout.address, 2**256 - 1))
        self.bps = 250
        self.balances = {
            w[a].address: 0 for a in (PAYER, PAYER2, STRANGER, MERCHANT, PAYOUT, TREASURY)
        }
        self.balances[w.checkout.address] = 0
        self.balances[w[PAYER].address] = FUNDS
        self.balances[w[PAYER2].address] = FUNDS
        self.balances[w[MERCHANT].address] = MERCHANT_FUNDS
        self.paid: dict[int, Paid] = {}
        self.holds: dict[bytes, OpenHold] = {}
        self.batch_nonces: set[int] = set()
        self.salt = 0

    # -- helpers -------------------------------------------------------------------------

    def move(self, frm: str, to: str, amount: int) -> None:
        self.balances[frm] -= amount
        self.balances[to] += amount

    def split(self, gross: int) -> tuple[int, int]:
        fee = gross * self.bps // 10_000
        return fee, gross - fee

    def expect_revert(self, sender, fn, reason: str | None = None) -> None:
        with pytest.raises(TransactionReverted) as info:
            self.w.chain.transact(sender, fn)
        if reason is not None:
            assert info.value.reason == reason

    # -- rules ---------------------------------------------------------------------------

    @initialize(bps=st.integers(0, 1_000))
    def fee_tier(self, bps: int) -> None:
        w = self.w
        w.chain.transact(w[OWNER], w.registry.functions.setFeeTier(w[MERCHANT].address, bps))
        self.bps = bps

    @rule(bps=st.integers(0, 1_000))
    def change_fee_tier(self, bps: int) -> None:
        self.fee_tier(bps)

    @rule(
        payer=st.sampled_from(PAYERS),
        amount=amounts,
        invoice_id=st.integers(0, 5),
        gasless=st.booleans(),
    )
    def pay_invoice(self, payer: int, amount: int, invoice_id: int, gasless: bool) -> None:
        w, c = self.w, self.w.checkout.functions
        account = w[payer]
        invoice = w.invoice(amount, invoice_id=invoice_id)
        signature = w.sign_invoice(invoice)
        if gasless:
            auth = w.receive_authorization(account, amount, c.invoiceHash(invoice).call())
            sender, fn = (
                w[RELAYER],
                c.payInvoiceWithAuthorization(invoice, signature, account.address, *auth),
            )
        else:
            sender, fn = account, c.payInvoice(invoice, signature)
        if invoice_id in self.paid:
            self.expect_revert(sender, fn, "checkout: invoice already paid")
            return
        if amount > self.balances[account.address]:
            self.expect_revert(sender, fn)
            return
        receipt = w.chain.transact(sender, fn)
        (paid,) = events(w.chain, receipt, w.checkout, "InvoicePaid")
        fee, net = self.split(amount)
        assert (paid["gross"], paid["fee"], paid["net"]) == (amount, fee, net)
        assert paid["fee"] + paid["net"] == paid["gross"]
        self.move(account.address, w[PAYOUT].address, net)
        self.move(account.address, w[TREASURY].address, fee)
        self.paid[invoice_id] = Paid(invoice, account.address, amount)

    @precondition(lambda self: self.paid)
    @rule(data=st.data())
    def refund(self, data) -> None:
        w = self.w
        invoice_id = data.draw(st.sampled_from(sorted(self.paid)))
        p = self.paid[invoice_id]
        amount = data.draw(st.integers(0, p.gross - p.refunded + 2))
        fn = w.checkout.functions.refund(p.invoice, p.payer, p.refunded, amount)
        if amount == 0:
            self.expect_revert(w[MERCHANT], fn, "checkout: zero amount")
        elif p.refunded + amount > p.gross:
            self.expect_revert(w[MERCHANT], fn, "checkout: refund exceeds payment")
        else:
            w.chain.transact(w[MERCHANT], fn)
            self.move(w[MERCHANT].address, p.payer, amount)
            p.refunded += amount
        assert p.refunded <= p.gross

    @rule(payer=st.sampled_from(PAYERS), amount=amounts, gasless=st.booleans())
    def place_hold(self, payer: int, amount: int, gasless: bool) -> None:
        w, c = self.w, self.w.checkout.functions
        account = w[payer]
        self.salt += 1
        hold = w.hold(amount, payer=account, salt=self.salt)
        hold_id = c.holdId(hold).call()
        if gasless:
            auth = w.receive_authorization(account, amount, hold_id)
            sender, fn = w[RELAYER], c.placeHoldWithAuthorization(hold, *auth)
        else:
            sender, fn = account, c.placeHold(hold)
        if amount > self.balances[account.address]:
            self.expect_revert(sender, fn)
            return
        w.chain.transact(sender, fn)
        self.move(account.address, w.checkout.address, amount)
        self.holds[hold_id] = OpenHold(hold, amount)

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), final=st.booleans())
    def capture(self, data, final: bool) -> None:
        w = self.w
        hold_id = data.draw(st.sampled_from(list(self.holds)))
        h = self.holds[hold_id]
        amount = data.draw(st.integers(1, h.remaining + 1))
        fn = w.checkout.functions.capture(h.hold, amount, final)
        if amount > h.remaining:
            self.expect_revert(w[MERCHANT], fn, "checkout: capture exceeds hold")
            return
        receipt = w.chain.transact(w[MERCHANT], fn)
        (captured,) = events(w.chain, receipt, w.checkout, "HoldCaptured")
        fee, net = self.split(amount)
        assert (captured["gross"], captured["fee"], captured["net"]) == (amount, fee, net)
        self.move(w.checkout.address, w[PAYOUT].address, net)
        self.move(w.checkout.address, w[TREASURY].address, fee)
        h.remaining -= amount
        if final or h.remaining == 0:
            self.move(w.checkout.address, h.hold[0], h.remaining)
            assert captured["returned"] == h.remaining
            del self.holds[hold_id]

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def void(self, data) -> None:
        w = self.w
        hold_id = data.draw(st.sampled_from(list(self.holds)))
        h = self.holds.pop(hold_id)
        w.chain.transact(w[MERCHANT], w.checkout.functions.void(h.hold))
        self.move(w.checkout.address, h.hold[0], h.remaining)
        self.expect_revert(
            w[MERCHANT], w.checkout.functions.void(h.hold), "checkout: hold not open"
        )

    @rule(payer=st.sampled_from((PAYER, PAYER2)), amount=st.integers(1, 10**6))
    def hold_expires_and_is_reclaimed(self, payer: int, amount: int) -> None:
        w, c = self.w, self.w.checkout.functions
        self.salt += 1
        hold = w.hold(
            amount, payer=w[payer], salt=self.salt, deadline=latest_timestamp(w.chain) + 3
        )
        w.chain.transact(w[payer], c.placeHold(hold))
        advance_past(w.chain, hold[4], w[STRANGER])
        self.expect_revert(w[MERCHANT], c.capture(hold, 1, False), "checkout: hold expired")
        w.chain.transact(w[RELAYER], c.reclaim(hold))
        # Placed and returned: the balances are as before.

    @rule(
        payments=st.lists(
            st.tuples(st.sampled_from(PAYERS), amounts, st.integers(0, 12), st.booleans()),
            min_size=1,
            max_size=6,
        )
    )
    def settle_batch(self, payments) -> None:
        w = self.w
        payout = w[PAYOUT].address
        signed, expected, fees = [], [], 0
        balances = dict(self.balances)
        for payer, value, nonce, forged in payments:
            account = w[payer]
            p = w.payment(
                w[STRANGER] if forged and payer != STRANGER else account, payout, value, nonce
            )
            signed.append((account.address, *p[1:]))
            if nonce in self.batch_nonces:
                expected.append(3)
            elif forged and payer != STRANGER:
                expected.append(1)
            elif value > balances[account.address]:
                expected.append(4)
            else:
                expected.append(0)
                self.batch_nonces.add(nonce)
                fee = value * self.bps // 10_000
                fees += fee
                balances[account.address] -= value
                balances[payout] += value - fee
                balances[w[TREASURY].address] += fee
        fn = w.checkout.functions.settleBatch(w.token.address, w[MERCHANT].address, signed)
        receipt = w.chain.transact(w[RELAYER], fn)
        skipped = events(w.chain, receipt, w.checkout, "PaymentSkipped")
        assert [e["status"] for e in skipped] == [s for s in expected if s]
        (settled,) = events(w.chain, receipt, w.checkout, "BatchSettled")
        assert settled["settled"] == expected.count(0)
        assert settled["fee"] == fees
        self.balances = balances

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def checkout_holds_exactly_the_open_holds(self) -> None:
        w = self.w
        held = sum(h.remaining for h in self.holds.values())
        assert w.balance(w.checkout) == held == self.balances[w.checkout.address]
        for hold_id, h in self.holds.items():
            assert w.checkout.functions.holdState(hold_id).call() == [1, h.remaining]

    @invariant()
    def balances_match_the_model(self) -> None:
        w = self.w
        for address, expected in self.balances.items():
            assert w.balance(address) == expected, address
        assert w.token.functions.totalSupply().call() == sum(self.balances.values())

    @invariant()
    def refunds_never_exceed_payments(self) -> None:
        assert all(p.refunded <= p.gross for p in self.paid.values())


def test_checkout_state(chain, accounts):
    profiles.run(CheckoutMachine, "checkout-short", chain=chain, accounts=accounts)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_checkout_state_long(chain, accounts):
    profiles.run(CheckoutMachine, "checkout-long", chain=chain, accounts=accounts)
