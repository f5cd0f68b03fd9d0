"""traffic_fines.vy against a Python model: a fine is paid once, by whoever owns the vehicle, at
the amount its due date says, or waived by its authority, and it stays with the vehicle.

A hypothesis RuleBasedStateMachine drives a fresh deployment per example on both nodes: two
authorities issue fines (due in seconds or in an hour) against two vehicles that change hands,
the owners and others try to pay them, the authorities (and others) try to waive them, an
authority is suspended and reinstated, time passes. After every step it checks every fine's
status, each vehicle's unpaid list and outstanding total, and every balance against the model.
The short profile runs by default; ``-m slow`` runs the long one.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from carpay.errors import TransactionReverted
from tests.contracts import profiles
from tests.contracts.checkout_fixtures import (
    advance_past,
    events,
    latest_timestamp,
    next_block_time,
)
from tests.contracts.vehicle_fixtures import (
    ALICE,
    AUTHORITY,
    AUTHORITY_CATEGORY,
    BOB,
    FUNDS,
    OWNER,
    PAYOUT,
    STRANGER,
    TREASURY,
    VINS,
    deploy_fines,
)

# No shrinking in the short profile: a failure shows the steps as found.
profiles.register("fines", short=(3, 30), long=(40, 60))

#: A second authority, paid out to accounts[TREASURY].
AUTHORITY2 = STRANGER
AUTHORITIES = (AUTHORITY, AUTHORITY2)
PAYOUTS = {AUTHORITY: PAYOUT, AUTHORITY2: TREASURY}
HOLDERS = (ALICE, BOB)
UNPAID, PAID, WAIVED = 1, 2, 3


class FinesMachine(RuleBasedStateMachine):
    """The contracts and the model, side by side."""

    chain = None
    accounts = None

    def __init__(self) -> None:
        super().__init__()
        self.w = w = deploy_fines(self.chain, self.accounts)
        register = w.merchants.functions.registerMerchant(
            w[AUTHORITY2].address, AUTHORITY_CATEGORY, w[TREASURY].address, 0
        )
        self.chain.transact(w[OWNER], register)
        self.titles = [w.vehicles.mint(VINS[0], ALICE), w.vehicles.mint(VINS[1], BOB)]
        self.owner = {self.titles[0]: ALICE, self.titles[1]: BOB}
        self.active = dict.fromkeys(AUTHORITIES, True)
        # fine id -> the model's fine
        self.fines: dict[int, dict] = {}
        self.paid_by = dict.fromkeys(HOLDERS, 0)
        self.received = dict.fromkeys(PAYOUTS.values(), 0)

    def send(self, caller: int, fn, reason: str | None):
        """Send ``fn``; it must revert with ``reason``, or succeed (returning the receipt)."""
        # No pytest.raises here: its failure is a BaseException, which hypothesis does not
        # shrink as a failing example.
        try:
            receipt = self.chain.transact(self.w[caller], fn)
        except TransactionReverted as exc:
            assert exc.reason == reason, f"reverted with {exc.reason!r}, expected {reason!r}"
            return None
        assert reason is None, f"did not revert, expected {reason!r}"
        return receipt

    def pick(self, index: int) -> int:
        """A fine id: mostly an unpaid one (paying them in any order reshuffles the vehicle's
        unpaid list), else any issued one or one never issued."""
        unpaid = [i for i, f in sorted(self.fines.items()) if f["status"] == UNPAID]
        if unpaid and index < 17:
            return unpaid[index % len(unpaid)]
        ids = sorted(self.fines) + [len(self.fines) + 1]
        return ids[index % len(ids)]

    # -- rules -----------------------------------------------------------------------------

    @rule(
        which=st.sampled_from((0, 0, 0, 1)),
        caller=st.sampled_from((AUTHORITY, AUTHORITY, AUTHORITY2, ALICE)),
        size=st.sampled_from(("usual",) * 5 + ("zero", "largest")),
        amount=st.integers(1, 10**9),
        late_fee=st.integers(0, 10**8),
        too_late=st.sampled_from((False,) * 6 + (True,)),
        soon=st.booleans(),
        reason_code=st.integers(0, 2**16 - 1),
    )
    def issue(self, which, caller, size, amount, late_fee, too_late, soon, reason_code) -> None:
        """Mostly valid fines; now and then a zero or the largest amount, or a late fee too
        large (hypothesis draws each branch of a ``one_of`` as often, whatever its weight)."""
        amount = {"usual": amount, "zero": 0, "largest": 2**128 - 1}[size]
        late_fee = 2**96 if too_late else late_fee
        w, title = self.w, self.titles[which]
        due = next_block_time(self.chain) + (3 if soon else 3600)
        fn = w.f.issueFine(title, w.token.address, amount, late_fee, due, reason_code)
        if caller not in AUTHORITIES or not self.active[caller]:
            reason = "traffic_fines: caller is not an active authority"
        elif amount == 0:
            reason = "traffic_fines: zero amount"
        elif late_fee >= 2**96:
            reason = "traffic_fines: late fee too large"
        else:
            reason = None
        if self.send(caller, fn, reason) is not None:
            self.fines[len(self.fines) + 1] = {
                "title": title,
                "authority": caller,
                "amount": amount,
                "late_fee": late_fee,
                "due": due,
                "status": UNPAID,
            }

    @precondition(lambda self: self.fines)
    @rule(
        index=st.integers(0, 20),
        payer=st.sampled_from((ALICE, BOB, AUTHORITY)),
        authority=st.sampled_from((AUTHORITY, AUTHORITY2, ALICE)),
        waive=st.sampled_from((False, False, True)),
    )
    def close(self, index: int, payer: int, authority: int, waive: bool) -> None:
        """Pay a fine (as an owner or not), or waive it (as its authority or not): one rule,
        as hypothesis leaves whole rules out of some examples."""
        if waive:
            self.waive(index, authority)
        else:
            self.pay(index, payer)

    def pay(self, index: int, caller: int) -> None:
        w, fine_id = self.w, self.pick(index)
        fine = self.fines.get(fine_id)
        if fine is None:
            reason = "traffic_fines: unknown fine"
        elif fine["status"] == PAID:
            reason = "traffic_fines: fine already paid"
        elif fine["status"] == WAIVED:
            reason = "traffic_fines: fine waived"
        elif self.owner[fine["title"]] != caller:
            reason = "traffic_fines: caller is not the vehicle's owner"
        elif fine["amount"] > FUNDS - self.paid_by[caller]:
            # Only the largest fines: the others, late fee included, fit the owners' funds.
            reason = "currency_token: transfer amount exceeds balance"
        else:
            reason = None
        receipt = self.send(caller, w.f.payFine(fine_id), reason)
        if receipt is None:
            return
        mined_at = self.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
        late_fee = fine["late_fee"] if mined_at > fine["due"] else 0
        [paid] = events(self.chain, receipt, w.fines, "FinePaid")
        assert (paid["paid"], paid["late_fee"]) == (fine["amount"] + late_fee, late_fee)
        assert paid["payout"] == w[PAYOUTS[fine["authority"]]].address
        fine["status"] = PAID
        self.paid_by[caller] += fine["amount"] + late_fee
        self.received[PAYOUTS[fine["authority"]]] += fine["amount"] + late_fee

    def waive(self, index: int, caller: int) -> None:
        fine_id = self.pick(index)
        fine = self.fines.get(fine_id)
        if fine is None:
            reason = "traffic_fines: unknown fine"
        elif fine["status"] == PAID:
            reason = "traffic_fines: fine already paid"
        elif fine["status"] == WAIVED:
            reason = "traffic_fines: fine waived"
        elif fine["authority"] != caller:
            reason = "traffic_fines: caller is not the issuing authority"
        else:
            reason = None
        if self.send(caller, self.w.f.waiveFine(fine_id), reason) is not None:
            fine["status"] = WAIVED

    @rule(which=st.integers(0, 2))
    def sell_or_suspend(self, which: int) -> None:
        """Sell a vehicle to the other holder, or (``which`` 2) suspend or reinstate the second
        authority (the first keeps issuing)."""
        if which == 2:
            self.suspend_or_reinstate()
            return
        w, title = self.w, self.titles[which]
        seller = self.owner[title]
        buyer = BOB if seller == ALICE else ALICE
        move = w.vehicles.f.transferFrom(w[seller].address, w[buyer].address, title)
        self.send(seller, move, None)
        self.owner[title] = buyer

    def suspend_or_reinstate(self) -> None:
        w, authority = self.w, AUTHORITY2
        self.active[authority] = not self.active[authority]
        fn = w.merchants.functions.setActive(w[authority].address, self.active[authority])
        self.send(OWNER, fn, None)

    @precondition(lambda self: any(f["status"] == UNPAID for f in self.fines.values()))
    @rule()
    def time_passes(self) -> None:
        advance_past(self.chain, latest_timestamp(self.chain) + 2, self.w[OWNER])

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def fines_match(self) -> None:
        f = self.w.f
        assert f.fineCount().call() == len(self.fines)
        for fine_id, fine in self.fines.items():
            stored = f.fine(fine_id).call()
            authority, title, _, amount, late_fee, due, _, status = stored
            assert authority == self.w[fine["authority"]].address
            assert (title, amount, late_fee, due) == (
                fine["title"],
                fine["amount"],
                fine["late_fee"],
                fine["due"],
            )
            assert status == fine["status"]

    @invariant()
    def unpaid_fines_stay_with_the_vehicle(self) -> None:
        f = self.w.f
        now = latest_timestamp(self.chain)
        for title in self.titles:
            unpaid = {i for i, x in self.fines.items() if x["title"] == title and x["status"] == 1}
            assert set(f.unpaidFines(title).call()) == unpaid
            owed = [f.amountDue(i).call() for i in unpaid]
            assert f.outstanding(title).call() == sum(owed)
            for fine_id, due_now in zip(unpaid, owed, strict=True):
                fine = self.fines[fine_id]
                if fine["due"] < now:  # past due at any later block
                    assert due_now == fine["amount"] + fine["late_fee"]
                elif fine["due"] > now + 600:  # a call runs within seconds of the last block
                    assert due_now == fine["amount"]
                else:
                    assert due_now in (fine["amount"], fine["amount"] + fine["late_fee"])

    @invariant()
    def money_went_where_it_should(self) -> None:
        w = self.w
        for holder in HOLDERS:
            assert w.balance(w[holder]) == FUNDS - self.paid_by[holder]
        for payout, received in self.received.items():
            assert w.balance(w[payout]) == received
        assert w.balance(w.fines.address) == 0


def test_traffic_fines_state(chain, accounts):
    profiles.run(FinesMachine, "fines-short", chain=chain, accounts=accounts)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_traffic_fines_state_long(chain, accounts):
    profiles.run(FinesMachine, "fines-long", chain=chain, accounts=accounts)
