"""vehicle_escrow.vy against a Python model: the car and the money always end on opposite sides.

A hypothesis RuleBasedStateMachine drives escrows of two titles (each sold by whoever owns it
to the other party) on both nodes: creation, funding, deposits with and without liens (the
lender's signature right or wrong, payoffs above and below the price), settlement, disputes,
the arbiter's resolutions, cancellations and reclaims, by the right and the wrong callers, with
liens recorded and released by the registrar and the lender along the way and deadlines that
pass. After every step it checks that balances, title owners and liens equal the model's, that
the escrow holds exactly the prices and titles of its open escrows, and that no escrow ever
left one party with both the car and the money. One world is deployed per node and run; each
example mints its own titles. The short profile runs by default; ``-m slow`` runs the long one.
"""

from __future__ import annotations

import itertools

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
from tests.contracts.checkout_fixtures import advance_past, latest_timestamp
from tests.contracts.escrow_fixtures import (
    ARBITER,
    BUYER,
    DEPOSITED,
    DISPUTED,
    FEE_BPS,
    FUNDED,
    SELLER,
    SETTLED,
    UNWOUND,
    deploy_sales,
)
from tests.contracts.vehicle_fixtures import LENDER, REGISTRAR, STRANGER, TREASURY

# No shrinking in the short profile: a failure shows the steps as found.
profiles.register("escrow", short=(2, 25), long=(40, 60))

ZERO = "0x" + "00" * 20
#: The parties; each sells the title it owns to the other.
PARTIES = (SELLER, BUYER)
CALLERS = (SELLER, BUYER, ARBITER, STRANGER)
#: Lenders: LENDER, or STRANGER for a lien recorded by someone the escrow never heard of.
LENDERS = (LENDER, STRANGER)
PRICES = (400 * 10**6, 1_000 * 10**6, 2_500 * 10**6)
PAYOFFS = (0, 400 * 10**6, 1_000 * 10**6, 3_000 * 10**6)
#: A short deadline, seconds after the last block; a far one never passes in a run.
SHORT, FAR = 5, 10**7
#: How far the next block's timestamp may lie beyond the last one's: within it, whether a
#: deadline has passed is unknown, and time-dependent steps are skipped.
GUARD = 2

NOT_BUYER = "vehicle_escrow: caller is not the buyer"
NOT_SELLER = "vehicle_escrow: caller is not the seller"
NOT_PARTY = "vehicle_escrow: caller is not a party"
CLOSED = "vehicle_escrow: escrow closed"
LATE = "vehicle_escrow: deadline passed"
NOT_BOTH = "vehicle_escrow: not both in"

_vins = itertools.count()


def fresh_vin() -> str:
    """A VIN never titled before in this process (17 characters of the VIN alphabet)."""
    return f"CARPAY{next(_vins):011d}"


class EscrowMachine(RuleBasedStateMachine):
    """The escrow and the model, side by side."""

    chain = None
    accounts = None
    worlds: dict = {}

    def __init__(self) -> None:
        super().__init__()
        key = id(self.chain)
        if key not in self.worlds:
            self.worlds[key] = deploy_sales(self.chain, self.accounts)
        self.s = s = self.worlds[key]
        self.titles = [s.vehicles.mint(fresh_vin(), party) for party in PARTIES]
        self.owner = {t: s[p].address for t, p in zip(self.titles, PARTIES, strict=True)}
        self.lien: dict[int, tuple[str, int] | None] = dict.fromkeys(self.titles)
        self.watched = [s[r].address for r in (SELLER, BUYER, LENDER, STRANGER, TREASURY)]
        self.watched.append(s.escrow.address)
        self.baseline = {a: s.balance(a) for a in self.watched}
        self.delta = dict.fromkeys(self.watched, 0)
        self.escrows: dict[int, dict] = {}

    # -- helpers ---------------------------------------------------------------------------

    def attempt(self, caller: int, fn, reason: str | None) -> None:
        """Send ``fn``; it must revert with ``reason``, or succeed when ``reason`` is None."""
        try:
            self.s.chain.transact(self.s[caller], fn)
        except TransactionReverted as exc:
            assert exc.reason == reason, f"reverted with {exc.reason!r}, expected {reason!r}"
        else:
            assert reason is None, f"did not revert, expected {reason!r}"

    def when(self, e: dict) -> str | None:
        """'before' or 'after' the escrow's deadline for the next block; None if unknown."""
        now = latest_timestamp(self.s.chain)
        if now > e["deadline"]:
            return "after"
        if now + GUARD <= e["deadline"]:
            return "before"
        return None

    def pay(self, to: str, amount: int) -> None:
        self.delta[self.s.escrow.address] -= amount
        self.delta[to] += amount

    def party(self, e: dict, caller: int) -> bool:
        return self.s[caller].address in (e["seller"], e["buyer"])

    def settle_reason(self, e: dict) -> str | None:
        if e["state"] & (FUNDED | DEPOSITED) != FUNDED | DEPOSITED:
            return NOT_BOTH
        lien = self.lien[e["title"]]
        if lien is not None and lien[0] != e["lender"]:
            return "vehicle_escrow: lien not signed for"
        return None

    def do_settle(self, e: dict) -> None:
        lien = self.lien[e["title"]]
        payoff = e["payoff"] if lien is not None else 0
        fee = min(e["price"] * FEE_BPS // 10_000, e["price"] - payoff)
        if lien is not None:
            self.pay(lien[0], payoff)
        self.pay(self.s[TREASURY].address, fee)
        self.pay(e["seller"], e["price"] - payoff - fee)
        self.lien[e["title"]] = None
        self.owner[e["title"]] = e["buyer"]
        e["state"] |= SETTLED
        e["car"], e["money"] = e["buyer"], e["seller"]

    def do_unwind(self, e: dict) -> None:
        if e["state"] & FUNDED:
            self.pay(e["buyer"], e["price"])
        if e["state"] & DEPOSITED:
            self.owner[e["title"]] = e["seller"]
        e["state"] |= UNWOUND
        e["car"], e["money"] = e["seller"], e["buyer"]

    def as_role(self, e: dict, who: str) -> int:
        """The account index of the escrow's ``"seller"`` or ``"buyer"``, or STRANGER."""
        if who == "stranger":
            return STRANGER
        return SELLER if e[who] == self.s[SELLER].address else BUYER

    def pick(self, data) -> tuple[int, dict]:
        eid = data.draw(st.sampled_from(sorted(self.escrows)))
        return eid, self.escrows[eid]

    # -- rules -----------------------------------------------------------------------------

    @rule(
        which=st.integers(0, 1),
        price=st.sampled_from(PRICES),
        short=st.booleans(),
        by_owner=st.integers(0, 4),
    )
    def create(self, which: int, price: int, short: bool, by_owner: int) -> None:
        s, title = self.s, self.titles[which]
        owner = self.owner[title]
        if owner == s.escrow.address:
            seller = SELLER
        else:
            seller = SELLER if owner == s[SELLER].address else BUYER
        if not by_owner:  # the other party tries to sell it
            seller = BUYER if seller == SELLER else SELLER
        buyer = BUYER if seller == SELLER else SELLER
        deadline = latest_timestamp(s.chain) + (SHORT if short else FAR)
        fn = s.f.createEscrow(
            title, s[buyer].address, s.token.address, price, deadline, s[ARBITER].address
        )
        ok = owner == s[seller].address
        self.attempt(seller, fn, None if ok else "vehicle_escrow: caller is not the title's owner")
        if ok:
            self.escrows[s.f.escrowCount().call()] = {
                "title": title,
                "seller": s[seller].address,
                "buyer": s[buyer].address,
                "price": price,
                "deadline": deadline,
                "state": 0,
                "lender": ZERO,
                "payoff": 0,
                "car": s[seller].address,
                "money": s[buyer].address,
            }

    @precondition(lambda self: self.escrows)
    @rule(data=st.data(), who=st.sampled_from(("buyer", "buyer", "seller", "stranger")))
    def fund(self, data, who: str) -> None:
        eid, e = self.pick(data)
        caller = self.as_role(e, who)
        when = self.when(e)
        if when is None:
            return
        if e["state"] & (SETTLED | UNWOUND):
            reason = CLOSED
        elif self.s[caller].address != e["buyer"]:
            reason = NOT_BUYER
        elif e["state"] & FUNDED:
            reason = "vehicle_escrow: already funded"
        elif when == "after":
            reason = LATE
        else:
            reason = None
        self.attempt(caller, self.s.f.fund(eid), reason)
        if reason is None:
            e["state"] |= FUNDED
            self.delta[e["buyer"]] -= e["price"]
            self.delta[self.s.escrow.address] += e["price"]
            e["money"] = "escrow"

    @precondition(lambda self: self.escrows)
    @rule(
        data=st.data(),
        who=st.sampled_from(("seller", "seller", "buyer", "stranger")),
        payoff=st.sampled_from(PAYOFFS),
        honest=st.integers(0, 5),
    )
    def deposit(self, data, who: str, payoff: int, honest: int) -> None:
        s = self.s
        eid, e = self.pick(data)
        when = self.when(e)
        if when is None:
            return
        lien = self.lien[e["title"]]
        args: tuple = ()
        if lien is not None:
            lender = lien[0]
            signer = next(s[r] for r in LENDERS if s[r].address == lender) if honest else s[ARBITER]
            args = s.sign_payoff(e["title"], eid, payoff, signer=signer, lender=lender)
        sender = self.as_role(e, who)
        if e["state"] & (SETTLED | UNWOUND):
            reason = CLOSED
        elif s[sender].address != e["seller"]:
            reason = NOT_SELLER
        elif e["state"] & DEPOSITED:
            reason = "vehicle_escrow: title already deposited"
        elif when == "after":
            reason = LATE
        elif lien is not None and not honest:
            reason = "vehicle_escrow: invalid lender signature"
        elif lien is not None and payoff > e["price"]:
            reason = "vehicle_escrow: price below payoff"
        elif self.owner[e["title"]] != e["seller"]:
            reason = "erc721: transfer from incorrect owner"
        else:
            reason = None
        self.attempt(sender, s.f.depositTitle(eid, *args), reason)
        if reason is None:
            e["state"] |= DEPOSITED
            if lien is not None:
                e["lender"], e["payoff"] = lien[0], payoff
            self.owner[e["title"]] = s.escrow.address
            e["car"] = "escrow"

    @precondition(lambda self: self.escrows)
    @rule(data=st.data(), caller=st.sampled_from(CALLERS))
    def settle(self, data, caller: int) -> None:
        eid, e = self.pick(data)
        when = self.when(e)
        if when is None:
            return
        if e["state"] & (SETTLED | UNWOUND):
            reason = CLOSED
        elif when == "before" and self.s[caller].address != e["buyer"]:
            reason = NOT_BUYER
        elif when == "after" and not self.party(e, caller):
            reason = NOT_PARTY
        elif e["state"] & DISPUTED:
            reason = "vehicle_escrow: disputed"
        else:
            reason = self.settle_reason(e)
        self.attempt(caller, self.s.f.settle(eid), reason)
        if reason is None:
            self.do_settle(e)

    @precondition(lambda self: self.escrows)
    @rule(data=st.data(), caller=st.sampled_from(CALLERS))
    def dispute(self, data, caller: int) -> None:
        eid, e = self.pick(data)
        when = self.when(e)
        if when is None:
            return
        if e["state"] & (SETTLED | UNWOUND):
            reason = CLOSED
        elif not self.party(e, caller):
            reason = NOT_PARTY
        elif e["state"] & (FUNDED | DEPOSITED) != FUNDED | DEPOSITED:
            reason = NOT_BOTH
        elif e["state"] & DISPUTED:
            reason = "vehicle_escrow: disputed"
        elif when == "after":
            reason = LATE
        else:
            reason = None
        self.attempt(caller, self.s.f.dispute(eid), reason)
        if reason is None:
            e["state"] |= DISPUTED

    @precondition(lambda self: self.escrows)
    @rule(
        data=st.data(),
        caller=st.sampled_from((ARBITER, ARBITER, SELLER, BUYER)),
        to_buyer=st.booleans(),
    )
    def resolve(self, data, caller: int, to_buyer: bool) -> None:
        eid, e = self.pick(data)
        if e["state"] & (SETTLED | UNWOUND):
            reason = CLOSED
        elif caller != ARBITER:
            reason = "vehicle_escrow: caller is not the arbiter"
        elif to_buyer:
            reason = self.settle_reason(e)
        else:
            reason = None
        self.attempt(caller, self.s.f.resolve(eid, to_buyer), reason)
        if reason is None:
            (self.do_settle if to_buyer else self.do_unwind)(e)

    @precondition(lambda self: self.escrows)
    @rule(data=st.data(), caller=st.sampled_from(CALLERS))
    def cancel(self, data, caller: int) -> None:
        eid, e = self.pick(data)
        address = self.s[caller].address
        if e["state"] & (SETTLED | UNWOUND):
            reason = CLOSED
        elif address == e["seller"]:
            reason = "vehicle_escrow: buyer has funded" if e["state"] & FUNDED else None
        elif address == e["buyer"]:
            reason = "vehicle_escrow: seller has deposited" if e["state"] & DEPOSITED else None
        else:
            reason = NOT_PARTY
        self.attempt(caller, self.s.f.cancel(eid), reason)
        if reason is None:
            self.do_unwind(e)

    @precondition(lambda self: self.escrows)
    @rule(data=st.data(), caller=st.sampled_from(CALLERS))
    def reclaim(self, data, caller: int) -> None:
        eid, e = self.pick(data)
        when = self.when(e)
        if when is None:
            return
        if e["state"] & (SETTLED | UNWOUND):
            reason = CLOSED
        elif not self.party(e, caller):
            reason = NOT_PARTY
        elif when == "before":
            reason = "vehicle_escrow: deadline not passed"
        elif e["state"] & (FUNDED | DEPOSITED) == FUNDED | DEPOSITED:
            reason = "vehicle_escrow: both in"
        else:
            reason = None
        self.attempt(caller, self.s.f.reclaim(eid), reason)
        if reason is None:
            self.do_unwind(e)

    @rule(which=st.integers(0, 1), lender=st.sampled_from(LENDERS), payoff=st.sampled_from(PAYOFFS))
    def record_lien(self, which: int, lender: int, payoff: int) -> None:
        s, title = self.s, self.titles[which]
        reason = "vehicle_registry: lien already open" if self.lien[title] else None
        self.attempt(
            REGISTRAR, s.registry.functions.recordLien(title, s[lender].address, payoff), reason
        )
        if reason is None:
            self.lien[title] = (s[lender].address, payoff)

    @rule(which=st.integers(0, 1))
    def lender_releases(self, which: int) -> None:
        s, title = self.s, self.titles[which]
        lien = self.lien[title]
        if lien is None:
            return
        lender = next(r for r in LENDERS if s[r].address == lien[0])
        self.attempt(lender, s.registry.functions.releaseLien(title), None)
        self.lien[title] = None

    @precondition(
        lambda self: any(
            not e["state"] & (SETTLED | UNWOUND)
            and e["deadline"] - latest_timestamp(self.s.chain) < 60
            for e in self.escrows.values()
        )
    )
    @rule()
    def deadlines_pass(self) -> None:
        soon = latest_timestamp(self.s.chain) + 60
        last = max(e["deadline"] for e in self.escrows.values() if e["deadline"] < soon)
        advance_past(self.s.chain, last, self.s[STRANGER])

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def balances_owners_and_liens_match(self) -> None:
        s = self.s
        for address in self.watched:
            assert s.balance(address) - self.baseline[address] == self.delta[address], address
        for title in self.titles:
            assert s.owner_of(title) == self.owner[title]
            lien = self.lien[title]
            assert s.lien_of(title) == (list(lien) if lien else [ZERO, 0])

    @invariant()
    def the_escrow_holds_exactly_the_open_deposits(self) -> None:
        s = self.s
        open_ = [e for e in self.escrows.values() if not e["state"] & (SETTLED | UNWOUND)]
        held = sum(e["price"] for e in open_ if e["state"] & FUNDED)
        assert s.balance(s.escrow) - self.baseline[s.escrow.address] == held
        titles = {e["title"] for e in open_ if e["state"] & DEPOSITED}
        assert {t for t in self.titles if s.owner_of(t) == s.escrow.address} == titles

    @invariant()
    def the_car_and_the_money_are_on_opposite_sides(self) -> None:
        for eid, e in self.escrows.items():
            state = self.s.state(eid)
            assert state == e["state"], (eid, state, e["state"])
            # Each side is with its depositor, in the escrow, or with the other party; never
            # both with the same party.
            assert not (e["car"] == e["money"] and e["car"] != "escrow"), e
            if state & SETTLED:
                assert (e["car"], e["money"]) == (e["buyer"], e["seller"])
            elif state & UNWOUND:
                assert (e["car"], e["money"]) == (e["seller"], e["buyer"])


def test_vehicle_escrow_state(chain, accounts):
    profiles.run(EscrowMachine, "escrow-short", chain=chain, accounts=accounts, worlds={})


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_vehicle_escrow_state_long(chain, accounts):
    profiles.run(EscrowMachine, "escrow-long", chain=chain, accounts=accounts, worlds={})
