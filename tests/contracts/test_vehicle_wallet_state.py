"""vehicle_wallet.vy against a Python model: the device key never spends beyond its limits.

A hypothesis RuleBasedStateMachine drives a fresh wallet per example on both nodes with device
payments and holds (by the device key, a rotated-out key and the owner; at merchants of three
categories, one of which the platform may deactivate), limit changes, category switches,
freezes, key rotations, withdrawals and title transfers (by the owner and by others), and on
anvil the passing of days. The model predicts every refusal. After every step it checks that
the wallet's day totals, balance, key, flags and owner equal the model's, and that for every
category and UTC day the device key's payments (totalled from the wallet's own events) never
exceeded the daily limit in force when each was made, nor the per-payment limit.

Days are the blocks' days (``timestamp // 86400``): the embedded node's clock is the wall clock,
so a step that crosses midnight is judged by the day of the block it landed in. The short
profile runs by default; ``-m slow`` runs the long one.
"""

from __future__ import annotations

import pytest
from eth_utils import keccak
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
)

from carpay.errors import TransactionReverted
from tests.contracts import profiles
from tests.contracts.checkout_fixtures import events, latest_timestamp
from tests.contracts.vehicle_wallet_fixtures import (
    ALICE,
    BOB,
    DEALER,
    DEALER_CATEGORY,
    DEVICE,
    FUEL,
    FUEL_CATEGORY,
    FUNDS,
    INVALID,
    MAGIC,
    NEW_DEVICE,
    OWNER,
    PARKING_CATEGORY,
    PAYOUT,
    deploy_wallet_world,
)

# As the other contract machines: no shrinking in the short profile (an example costs a
# deployment and dozens of transactions); the long profile shrinks.
profiles.register("vehicle-wallet", short=(2, 25), long=(40, 60))

#: The merchants and their categories (PAYOUT doubles as a parking operator).
MERCHANTS = {FUEL: FUEL_CATEGORY, DEALER: DEALER_CATEGORY, PAYOUT: PARKING_CATEGORY}
CATEGORIES = sorted(set(MERCHANTS.values()))
#: Who tries the device key's functions: mostly the current key, else a former key or the owner.
spenders = st.sampled_from(("device", "device", "device", "device", NEW_DEVICE, DEVICE, ALICE))
OWNERS = (ALICE, BOB)
DAY = 86_400

#: An amount, or None for "what is left today, plus a delta".
amounts = st.one_of(
    st.none(), st.none(), st.integers(1, 400), st.sampled_from([0, 1, 100, 250, 2**128])
)
deltas = st.sampled_from([-1, 0, 0, 0, 1, 1, 2, 50, -30])
limits = st.one_of(st.integers(0, 500), st.sampled_from([0, 100, 250, 2**128 - 1, 2**128]))
#: The rarer changes `act` picks from, with the strategies of their arguments.
ACTIONS = {
    "allow_category": {
        "caller": st.sampled_from(OWNERS),
        "category": st.sampled_from(CATEGORIES),
        "allowed": st.booleans(),
    },
    "toggle_freeze": {"caller": st.sampled_from(OWNERS)},
    "rotate_device_key": {
        "caller": st.sampled_from((*OWNERS, DEVICE)),
        "key": st.sampled_from((DEVICE, NEW_DEVICE)),
    },
    "withdraw": {"caller": st.sampled_from((*OWNERS, DEVICE)), "amount": st.integers(0, 1_000)},
    "transfer_title": {"caller": st.sampled_from(OWNERS)},
    "toggle_merchant": {"merchant": st.sampled_from(list(MERCHANTS))},
}
#: What the owner sets up at the start: fuel and dealers allowed, parking not yet.
START_LIMITS = {FUEL_CATEGORY: (300, 200), DEALER_CATEGORY: (500, 500), PARKING_CATEGORY: (0, 0)}


class WalletMachine(RuleBasedStateMachine):
    """The wallet and the model, side by side."""

    chain = None
    accounts = None

    def __init__(self) -> None:
        super().__init__()
        self.w = w = deploy_wallet_world(self.chain, self.accounts)
        self.chain.transact(
            w[OWNER],
            w.merchants.functions.registerMerchant(
                w[PAYOUT].address, PARKING_CATEGORY, w[PAYOUT].address, 0
            ),
        )
        self.owner = ALICE
        self.device = DEVICE
        self.frozen = False
        self.active = {m: True for m in MERCHANTS}
        self.allowed = {FUEL_CATEGORY, DEALER_CATEGORY}
        self.limits = dict(START_LIMITS)  # category -> (daily, per payment)
        for category, (daily, per_payment) in START_LIMITS.items():
            if category in self.allowed:
                w.allow(category, daily, per_payment)
        self.spent: dict[tuple[int, int], int] = {}  # (category, day) -> total
        self.balance = FUNDS
        self.next_id = 1
        self.can_move_clock = True
        self.violations: list[str] = []

    # -- helpers ---------------------------------------------------------------------------

    def attempt(self, caller: int, fn) -> tuple[str | None, dict | None]:
        """Send ``fn``: (revert reason or None, receipt or None)."""
        try:
            return None, self.chain.transact(self.w[caller], fn)
        except TransactionReverted as exc:
            return exc.reason or "<no reason>", None

    def today(self) -> int:
        return latest_timestamp(self.chain) // DAY

    def spend_reason(self, caller: int, merchant: int, amount: int, day: int) -> str | None:
        """What the wallet answers the device key's payment of ``amount`` on ``day``."""
        category = MERCHANTS[merchant]
        daily, per_payment = self.limits[category]
        if caller != self.device:
            return "vehicle_wallet: caller is not the device key"
        if self.frozen:
            return "vehicle_wallet: frozen"
        if amount == 0:
            return "vehicle_wallet: zero amount"
        if not self.active[merchant]:
            return "vehicle_wallet: merchant inactive"
        if category not in self.allowed:
            return "vehicle_wallet: category not allowed"
        if amount > per_payment:
            return "vehicle_wallet: over per-payment limit"
        if self.spent.get((category, day), 0) + amount > daily:
            return "vehicle_wallet: over daily limit"
        return None

    def spend(self, caller: int, merchant: int, amount: int, fn, event: str) -> None:
        before = self.today()
        reason, receipt = self.attempt(caller, fn)
        if receipt is not None:
            day = self.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"] // DAY
            expected = self.spend_reason(caller, merchant, amount, day)
            assert expected is None, f"paid {amount}, expected {expected!r}"
            category = MERCHANTS[merchant]
            total = self.spent.get((category, day), 0) + amount
            daily, per_payment = self.limits[category]
            # The property, checked on what the contract did, not on what the model predicted.
            logged = events(self.chain, receipt, self.w.wallet, event)
            assert [(e["category"], e["amount"], e["spent_today"]) for e in logged] == [
                (category, amount, total)
            ]
            if total > daily or amount > per_payment:
                self.violations.append(
                    f"{category}/{day}: {total} > {daily} or {amount} > {per_payment}"
                )
            self.spent[(category, day)] = total
            self.balance -= amount
        else:
            # A refusal is judged by the day it was tried in (either side of a midnight).
            days = {before, self.today()}
            expected = {self.spend_reason(caller, merchant, amount, d) for d in days}
            assert reason in expected, f"reverted with {reason!r}, expected {expected!r}"

    def owner_reason(self, caller: int) -> str | None:
        if caller != self.owner:
            return "vehicle_wallet: caller is not the vehicle's owner"
        return None

    def expect(self, caller: int, fn, expected: str | None) -> bool:
        reason, _ = self.attempt(caller, fn)
        assert reason == expected, f"got {reason!r}, expected {expected!r}"
        return reason is None

    # -- the device key --------------------------------------------------------------------

    def amount_for(self, merchant: int, amount: int | None, delta: int) -> int:
        """``amount``, or else what the device key has left today at ``merchant`` plus
        ``delta`` (so that payments land on either side of the limits)."""
        if amount is not None:
            return amount
        daily, per_payment = self.limits[MERCHANTS[merchant]]
        left = daily - self.spent.get((MERCHANTS[merchant], self.today()), 0)
        return max(0, min(left, per_payment) + delta)

    @rule(
        who=spenders,
        merchant=st.sampled_from(list(MERCHANTS)),
        amount=amounts,
        delta=deltas,
    )
    def pay(self, who: str | int, merchant: int, amount: int | None, delta: int) -> None:
        self._pay(who, merchant, amount, delta)

    @rule(who=spenders, merchant=st.sampled_from(list(MERCHANTS)), delta=deltas)
    def pay_at_the_limit(self, who: str | int, merchant: int, delta: int) -> None:
        self._pay(who, merchant, None, delta)

    def _pay(self, who: str | int, merchant: int, amount: int | None, delta: int) -> None:
        w, caller = self.w, self.spender(who)
        amount = self.amount_for(merchant, amount, delta)
        invoice = w.invoice(amount, invoice_id=self.next_id, merchant=merchant)
        self.next_id += 1
        fn = w.f.pay(invoice, w.sign_invoice(invoice))
        self.spend(caller, merchant, amount, fn, "InvoicePaid")

    @rule(
        who=spenders,
        merchant=st.sampled_from(list(MERCHANTS)),
        amount=amounts,
        delta=deltas,
    )
    def place_hold(self, who: str | int, merchant: int, amount: int | None, delta: int) -> None:
        w, caller = self.w, self.spender(who)
        amount = self.amount_for(merchant, amount, delta)
        hold = w.hold(amount, merchant=merchant, salt=self.next_id)
        self.next_id += 1
        self.spend(caller, merchant, amount, w.f.placeHold(hold), "HoldPlaced")

    def spender(self, who: str | int) -> int:
        return self.device if who == "device" else who

    # -- the owner -------------------------------------------------------------------------

    @rule(
        caller=st.sampled_from(OWNERS),
        category=st.sampled_from(CATEGORIES),
        daily=limits,
        per_payment=limits,
    )
    def set_limits(self, caller: int, category: int, daily: int, per_payment: int) -> None:
        fn = self.w.f.setLimits(self.w.token.address, category, daily, per_payment)
        expected = self.owner_reason(caller)
        if expected is None and max(daily, per_payment) >= 2**128:
            expected = "vehicle_wallet: limit too large"
        if self.expect(caller, fn, expected):
            self.limits[category] = (daily, per_payment)

    @rule(action=st.sampled_from(list(ACTIONS)), data=st.data())
    def act(self, action: str, data: st.DataObject) -> None:
        """One of the rarer changes: the owner's (tried by others too) or the platform's."""
        method = getattr(self, action)
        strategies = ACTIONS[action]
        method(*(data.draw(strategy, label=name) for name, strategy in strategies.items()))

    def allow_category(self, caller: int, category: int, allowed: bool) -> None:
        if self.expect(
            caller, self.w.f.allowCategory(category, allowed), self.owner_reason(caller)
        ):
            (self.allowed.add if allowed else self.allowed.discard)(category)

    def toggle_freeze(self, caller: int) -> None:
        fn = self.w.f.unfreeze() if self.frozen else self.w.f.freeze()
        if self.expect(caller, fn, self.owner_reason(caller)):
            self.frozen = not self.frozen

    def rotate_device_key(self, caller: int, key: int) -> None:
        if self.expect(
            caller, self.w.f.rotateDeviceKey(self.w[key].address), self.owner_reason(caller)
        ):
            self.device = key

    def withdraw(self, caller: int, amount: int) -> None:
        fn = self.w.f.withdraw(self.w.token.address, self.w[caller].address, amount)
        if self.expect(caller, fn, self.owner_reason(caller)):
            self.balance -= amount

    def transfer_title(self, caller: int) -> None:
        w = self.w
        to = BOB if self.owner == ALICE else ALICE
        fn = w.vehicles.functions.transferFrom(w[self.owner].address, w[to].address, w.title)
        expected = None if caller == self.owner else "erc721: caller is not token owner or approved"
        if self.expect(caller, fn, expected):
            self.owner = to

    def toggle_merchant(self, merchant: int) -> None:
        w = self.w
        active = not self.active[merchant]
        self.chain.transact(w[OWNER], w.merchants.functions.setActive(w[merchant].address, active))
        self.active[merchant] = active

    @rule()
    def next_day(self) -> None:
        """On anvil, a day passes; the embedded node's clock is the wall clock."""
        if not self.can_move_clock:
            return
        answer = self.chain.w3.provider.make_request("evm_increaseTime", [DAY])
        if "error" in answer:
            self.can_move_clock = False
            return
        w = self.w
        self.chain.transact(w[OWNER], w[OWNER].address, b"", gas=21_000)

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def only_the_owner_signs(self) -> None:
        digest = keccak(self.next_id.to_bytes(32, "big"))
        for signer in {self.owner, self.device}:
            signature = self.w.wallet_signature(self.w[signer], digest).to_bytes()
            answer = self.w.f.isValidSignature(digest, signature).call()
            assert answer == (MAGIC if signer == self.owner and not self.frozen else INVALID)

    @invariant()
    def never_beyond_the_limits(self) -> None:
        assert self.violations == []

    @invariant()
    def day_totals_match(self) -> None:
        f, token = self.w.f, self.w.token.address
        # Read at one block, whose timestamp gives the day.
        block = self.chain.w3.eth.get_block("latest")
        day, at = block["timestamp"] // DAY, block["number"]
        for category in CATEGORIES:
            spent = f.spentToday(token, category).call(block_identifier=at)
            assert spent == self.spent.get((category, day), 0)
            daily, per_payment = self.limits[category]
            assert f.limits(token, category).call() == [daily, per_payment]

    @invariant()
    def state_matches(self) -> None:
        w, f = self.w, self.w.f
        assert w.balance(w.wallet) == self.balance
        assert f.owner().call() == w[self.owner].address
        assert f.deviceKey().call() == w[self.device].address
        assert f.frozen().call() is self.frozen
        assert {c for c in range(9) if f.isCategoryAllowed(c).call()} == self.allowed


def test_vehicle_wallet_state(chain, accounts):
    profiles.run(WalletMachine, "vehicle-wallet-short", chain=chain, accounts=accounts)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_vehicle_wallet_state_long(chain, accounts):
    profiles.run(WalletMachine, "vehicle-wallet-long", chain=chain, accounts=accounts)
