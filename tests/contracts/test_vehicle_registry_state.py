"""vehicle_registry.vy against a Python model: liens pin owners, odometers only go up.

A hypothesis RuleBasedStateMachine drives a fresh registry per example on both nodes with
transfers (plain and safe, by the owner, an operator or someone else), liens (recorded,
repriced and released by the right and the wrong callers) and service records (readings up,
equal and down, by shops and others). After every step it checks that owners, liens, service
counts and odometers equal the model's, that a title never changed owner while a lien was open
on it, and that no odometer ever went down. The short profile runs by default; ``-m slow``
runs the long one.
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
from tests.contracts.vehicle_fixtures import (
    ALICE,
    BOB,
    LENDER,
    REGISTRAR,
    SHOP,
    STRANGER,
    VINS,
    deploy_vehicles,
)

# The short profile does not shrink: an example costs a deployment and a dozen transactions,
# and shrinking one takes minutes. A failure shows the steps as found; the long profile
# shrinks them.
profiles.register("vehicles", short=(3, 20), long=(40, 50))

ZERO = "0x" + "00" * 20
MAX_ODOMETER = 2**48 - 1
#: The odometer reading of each vehicle's first service record.
FIRST_KM = 10_000
#: Who may hold titles; STRANGER is an operator of both (a dealer).
HOLDERS = (ALICE, BOB)
DEALER = STRANGER
#: Who may try to move a title, record or touch a lien, or anchor a record.
CALLERS = (ALICE, BOB, DEALER, REGISTRAR, LENDER, SHOP)


class VehicleMachine(RuleBasedStateMachine):
    """The registry and the model, side by side."""

    chain = None
    accounts = None

    def __init__(self) -> None:
        super().__init__()
        self.v = deploy_vehicles(self.chain, self.accounts)
        v = self.v
        self.titles = [v.mint(VINS[0], ALICE), v.mint(VINS[1], BOB)]
        for holder in HOLDERS:
            v.chain.transact(v[holder], v.f.setApprovalForAll(v[DEALER].address, True))
        self.owner = {self.titles[0]: v[ALICE].address, self.titles[1]: v[BOB].address}
        self.lien: dict[int, tuple[str, int] | None] = dict.fromkeys(self.titles)
        self.pinned: dict[int, str] = {}  # the owner when the open lien was recorded
        # A first service record each, so that a rollback can be tried from the first step.
        for title in self.titles:
            v.chain.transact(v[SHOP], v.f.recordService(title, keccak(b"delivery"), FIRST_KM))
        self.odometer = dict.fromkeys(self.titles, FIRST_KM)
        self.count = dict.fromkeys(self.titles, 1)
        self.seen_odometer = dict.fromkeys(self.titles, FIRST_KM)

    def attempt(self, caller: int, fn, reason: str | None) -> None:
        """Send ``fn``; it must revert with ``reason``, or succeed when ``reason`` is None."""
        # No pytest.raises here: its failure is a BaseException, which hypothesis does not
        # shrink as a failing example.
        try:
            self.v.chain.transact(self.v[caller], fn)
        except TransactionReverted as exc:
            assert exc.reason == reason, f"reverted with {exc.reason!r}, expected {reason!r}"
        else:
            assert reason is None, f"did not revert, expected {reason!r}"

    # -- rules -----------------------------------------------------------------------------

    @rule(
        which=st.integers(0, 1),
        caller=st.sampled_from(CALLERS),
        to=st.sampled_from(HOLDERS),
        safe=st.booleans(),
    )
    def transfer(self, which: int, caller: int, to: int, safe: bool) -> None:
        v, title = self.v, self.titles[which]
        owner, recipient = self.owner[title], v[to].address
        fn = (v.f.safeTransferFrom if safe else v.f.transferFrom)(owner, recipient, title)
        address = v[caller].address
        if self.lien[title] is not None:
            reason = "vehicle_registry: title has an open lien"
        elif address != owner and caller != DEALER:
            reason = "erc721: caller is not token owner or approved"
        else:
            reason = None
        self.attempt(caller, fn, reason)
        if reason is None:
            self.owner[title] = recipient

    @rule(
        which=st.integers(0, 1),
        caller=st.sampled_from((REGISTRAR, REGISTRAR, LENDER, ALICE)),
        lender=st.sampled_from((LENDER, DEALER)),
        amount=st.one_of(st.integers(0, 10**12), st.just(2**96 - 1), st.just(2**96)),
    )
    def record_lien(self, which: int, caller: int, lender: int, amount: int) -> None:
        v, title = self.v, self.titles[which]
        fn = v.f.recordLien(title, v[lender].address, amount)
        if caller != REGISTRAR:
            reason = "vehicle_registry: caller is not a registrar"
        elif self.lien[title] is not None:
            reason = "vehicle_registry: lien already open"
        elif amount >= 2**96:
            reason = "vehicle_registry: payoff too large"
        else:
            reason = None
        self.attempt(caller, fn, reason)
        if reason is None:
            self.lien[title] = (v[lender].address, amount)
            self.pinned[title] = self.owner[title]

    @rule(which=st.integers(0, 1), caller=st.sampled_from(CALLERS), release=st.booleans())
    def touch_lien(self, which: int, caller: int, release: bool) -> None:
        v, title = self.v, self.titles[which]
        lien = self.lien[title]
        fn = v.f.releaseLien(title) if release else v.f.setLienPayoff(title, 1_000 + caller)
        if lien is None:
            reason = "vehicle_registry: no open lien"
        elif v[caller].address != lien[0] and caller != REGISTRAR:
            reason = "vehicle_registry: caller is not the lienholder or a registrar"
        else:
            reason = None
        self.attempt(caller, fn, reason)
        if reason is None and release:
            self.lien[title] = None
            del self.pinned[title]
        elif reason is None:
            self.lien[title] = (lien[0], 1_000 + caller)

    @rule(
        which=st.integers(0, 1),
        caller=st.sampled_from((SHOP, SHOP, SHOP, REGISTRAR, ALICE)),
        delta=st.one_of(
            st.integers(-FIRST_KM, -1), st.integers(1, 20_000), st.just(0), st.just(MAX_ODOMETER)
        ),
    )
    def record_service(self, which: int, caller: int, delta: int) -> None:
        v, title = self.v, self.titles[which]
        reading = self.odometer[title] + delta
        document = keccak(f"{title}:{self.count[title]}".encode())
        fn = v.f.recordService(title, document, reading)
        if caller != SHOP:
            reason = "vehicle_registry: caller is not a repair shop"
        elif reading > MAX_ODOMETER:
            reason = "vehicle_registry: odometer out of range"
        elif reading < self.odometer[title]:
            reason = "vehicle_registry: odometer rollback"
        else:
            reason = None
        self.attempt(caller, fn, reason)
        if reason is None:
            self.odometer[title] = reading
            self.count[title] += 1

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def owners_and_liens_match(self) -> None:
        f = self.v.f
        for title in self.titles:
            owner = f.ownerOf(title).call()
            assert owner == self.owner[title]
            lien = self.lien[title]
            assert f.lienOf(title).call() == (list(lien) if lien else [ZERO, 0])

    @invariant()
    def a_liened_title_never_moves(self) -> None:
        f = self.v.f
        for title, owner in self.pinned.items():
            assert f.ownerOf(title).call() == owner

    @invariant()
    def odometers_only_go_up(self) -> None:
        f = self.v.f
        for title in self.titles:
            reading = f.odometerOf(title).call()
            assert reading >= self.seen_odometer[title]
            assert reading == self.odometer[title]
            self.seen_odometer[title] = reading
            assert f.serviceCount(title).call() == self.count[title]
            if self.count[title]:
                last = f.serviceRecord(title, self.count[title] - 1).call()
                assert last[1] == reading


def test_vehicle_registry_state(chain, accounts):
    profiles.run(VehicleMachine, "vehicles-short", chain=chain, accounts=accounts)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_vehicle_registry_state_long(chain, accounts):
    profiles.run(VehicleMachine, "vehicles-long", chain=chain, accounts=accounts)
