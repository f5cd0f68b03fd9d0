"""insurance.vy against a Python model: every premium is held, earned or refunded, to the unit.

A hypothesis RuleBasedStateMachine drives policies on two vehicles (ALICE's and BOB's) on both
nodes: offers with terms and grace periods of a few seconds and refund rules of 0, 50 or 100% or
anything between, acceptances by the vehicle's owner and through the owner's signature relayed
by a stranger (forged and expired signatures too), premiums set above and below the accepted
maximum, new acceptances with another maximum, renewals when due, lapses, cancellations,
collections, withdrawals of the earnings, claims, offers withdrawn, the holder selling the
vehicle and the platform deactivating the insurer, by the right and the wrong callers. The model
predicts every refusal. After every step, reading at one block, it checks that the contract
holds exactly the premium still held for the current terms plus the insurer's unwithdrawn
earnings, that every balance equals the model's, and that each policy's terms, status, cover,
paid-through date, collectable premium and cancellation refund are the model's at that block's
timestamp; rules check that a renewal pulls the premium (never above the accepted maximum) and
moves the paid-through date by exactly a term, and the amounts of refunds and credits.

Time: the embedded node's clock is the wall clock and each block is at least a second later
than its parent, so every transaction moves it; anvil's blocks share the wall clock's second
and time moves on request (``advance_past``). Transactions are sent with a fixed gas limit, so
that no gas estimate, run at another time than the block, refuses them first: a transaction
that fails is mined too, and each outcome is judged at the timestamp of the block that mined it
(the reason of a failure as the client replays it on the parent block, at the parent's
timestamp). One world is deployed per node and run, and a fresh insurance contract per example,
so that what the contract holds is all the example's. The short profile runs by default;
``-m slow`` runs the long one.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_utils import to_checksum_address
from eth_utils.abi import get_abi_output_types
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from carpay.errors import TransactionReverted
from tests.contracts import profiles
from tests.contracts.checkout_fixtures import (
    CLOCK,
    ZERO,
    advance_past,
    events,
    latest_timestamp,
)
from tests.contracts.insurance_fixtures import (
    ACTIVE,
    CANCELLED,
    FEE_BPS,
    INSURER,
    LAPSED,
    OFFERED,
    POLICY_FIELDS,
    PREMIUM,
    WITHDRAWN,
    deploy_insurance,
)
from tests.contracts.vehicle_fixtures import ALICE, BOB, OWNER, PAYOUT, STRANGER, TREASURY

# As the other contract machines: no shrinking in the short profile (an example costs a
# deployment and dozens of transactions); the long profile shrinks.
profiles.register("insurance", short=(2, 25), long=(40, 60))

MAX_PREMIUM = 2**96 - 1
#: The gas of every transaction to the contracts (none needs a third of it).
GAS = 1_000_000
#: At most this many open offers and active policies at a time: every step reads each of them
#: in full (and only the terms and claims of a policy once it has ended and was read so).
LIVE = 4
#: A title the vehicle registry never minted.
UNKNOWN_TITLE = 12_345
#: The owners (and holders) of the two vehicles, in turn.
PARTIES = (ALICE, BOB)

premiums = st.one_of(st.integers(1, 2 * 10**9), st.sampled_from((1, 3, 10**6 + 1, PREMIUM)))
refund_rules = st.one_of(st.sampled_from((0, 5_000, 10_000)), st.integers(0, 10_000))
terms, graces = st.integers(3, 8), st.integers(2, 6)
#: A maximum relative to the premium (see `InsuranceMachine.maximum`), and the distance.
maxima = st.sampled_from(("exact", "more", "exact", "more", "less", "exact", "more", "too_large"))
extras = st.one_of(st.integers(1, 10**9), st.just(1))
#: Who acts for a policy: its holder (while offered: the vehicle's owner), the other of ALICE
#: and BOB, or a stranger.
acting = st.sampled_from(("holder", "holder", "holder", "other", STRANGER))
anyone = st.sampled_from((STRANGER, STRANGER, ALICE, BOB, INSURER))
#: Where `time_passes` goes: a term's end, a grace period's end, a few seconds on.
ends = st.sampled_from(("term", "grace", "seconds"))
#: Whether a renewal or lapse waits until it is due (mostly).
waits = st.sampled_from((True, True, False))


_vins = itertools.count()


def fresh_vin() -> str:
    """A VIN never titled before in this process (17 characters of the VIN alphabet)."""
    return f"CARPAY{next(_vins):011d}"


@dataclass
class Policy:
    """What the model knows of a policy. ``start`` is the offer's expiry until it is accepted
    (the contract keeps both in one field), then the start of the current term."""

    title: int
    premium: int
    term: int
    grace: int
    refund_bps: int
    start: int
    status: int = OFFERED
    holder: str = ZERO
    max_premium: int = 0
    paid: int = 0  # for the current term
    credited: int = 0  # of ``paid``, to the insurer
    claims: int = 0

    @property
    def paid_through(self) -> int:
        return self.start + self.term

    @property
    def held(self) -> int:
        """What of the premium the contract still holds (nothing once the policy ended)."""
        return self.paid - self.credited

    def earned(self, t: int) -> int:
        if t >= self.start + self.term:
            return self.paid
        return self.paid * (t - self.start) // self.term

    def refund(self, t: int) -> int:
        return (self.paid - self.earned(t)) * self.refund_bps // 10_000

    def covered(self, t: int) -> bool:
        return self.status == ACTIVE and t < self.paid_through + self.grace

    def status_at(self, t: int) -> int:
        return LAPSED if self.status == ACTIVE and not self.covered(t) else self.status

    def close(self, status: int) -> None:
        self.status = status
        self.credited = self.paid


@dataclass
class Signed:
    """An owner's signed acceptance, not yet relayed."""

    pid: int
    holder: str
    maximum: int
    deadline: int
    nonce: int
    signature: bytes
    forged: bool


class InsuranceMachine(RuleBasedStateMachine):
    """The insurance contract and the model, side by side."""

    chain = None
    accounts = None
    worlds: dict = {}

    def __init__(self) -> None:
        super().__init__()
        key = id(self.chain)
        if key not in self.worlds:
            self.worlds[key] = deploy_insurance(self.chain, self.accounts)
        world = self.worlds[key]
        address = self.chain.deploy(
            "insurance",
            world.merchants.address,
            world.vehicles.registry.address,
            sender=world[OWNER],
        )
        self.s = s = replace(world, insurance=self.chain.contract("insurance", address))
        for party in (ALICE, BOB, INSURER):
            self.chain.transact(s[party], s.token.functions.approve(address, 2**256 - 1))
        insurer = s[INSURER].address
        if not s.merchants.functions.merchantTerms(insurer).call()[3]:
            self.chain.transact(s[OWNER], s.merchants.functions.setActive(insurer, True))
        self.insurer_active = True
        self.titles = [s.vehicles.mint(fresh_vin(), party) for party in PARTIES]
        self.owner = {t: s[p].address for t, p in zip(self.titles, PARTIES, strict=True)}
        self.role = {s[r].address: r for r in (*PARTIES, INSURER, STRANGER)}
        self.policies: dict[int, Policy] = {}
        self.earnings = 0
        self.nonces = dict.fromkeys(self.role, 0)
        self.claim_count = dict.fromkeys(self.titles, 0)
        self.last_paid_through: dict[int, int] = {}
        self.watched = [s[r].address for r in (ALICE, BOB, INSURER, PAYOUT, TREASURY, STRANGER)]
        self.baseline = {a: s.balance(a) for a in self.watched}
        self.delta = dict.fromkeys(self.watched, 0)
        self.delta[address] = 0  # a fresh contract: its baseline is 0
        self.snapshot_cache: tuple[int, int, dict] | None = None
        self.ended: set[int] = set()  # ended policies read in full since they ended
        self.kept: list[Signed] = []
        self.references: set[tuple[int, int]] = set()  # claims paid: (policy, reference)

    # -- helpers ---------------------------------------------------------------------------

    def attempt(self, caller: int, fn, reason_at: Callable[[int], str | None]) -> tuple[Any, int]:
        """Send ``fn`` from ``caller``; ``reason_at(t)`` is the model's revert reason for a block
        at time ``t`` (None: it succeeds). Returns the receipt (None if it failed) and the
        timestamp of the block that mined it."""
        chain = self.s.chain
        try:
            receipt = chain.transact(self.s[caller], fn, gas=GAS)
        except TransactionReverted as exc:
            assert exc.tx_hash is not None, "refused before it was mined"
            number = chain.receipt(exc.tx_hash)["blockNumber"]
            t, parent = self.block_time(number), self.block_time(number - 1)
            expected = reason_at(t)
            assert expected is not None, f"reverted at {t} with {exc.reason!r}, expected success"
            # The client replays a failure on the parent block: anvil runs it at the parent's
            # timestamp, the embedded node later (see `CLOCK`), at the latest now.
            replayed = {reason_at(u) for u in range(parent, max(t, self.clock()) + 1)}
            assert exc.reason in replayed, (
                f"reverted with {exc.reason!r}, expected {expected!r} at {t} "
                f"(replayed: {replayed!r})"
            )
            return None, t
        t = self.block_time(receipt["blockNumber"])
        expected = reason_at(t)
        assert expected is None, f"succeeded at {t}, expected {expected!r}"
        return receipt, t

    def block_time(self, number: int) -> int:
        return self.s.chain.w3.eth.get_block(number)["timestamp"]

    def wait_until(self, t: int) -> None:
        """Mine until the latest block is at ``t`` or later."""
        advance_past(self.s.chain, t - 1, self.s[STRANGER])

    def pay(self, frm: str, to: str, amount: int) -> None:
        self.delta[frm] -= amount
        self.delta[to] += amount

    def credited(self, receipt: Any) -> list[int]:
        """The amounts of the receipt's ``PremiumEarned`` events."""
        logged = events(self.s.chain, receipt, self.s.insurance, "PremiumEarned")
        return [e["amount"] for e in logged]

    def credit(self, amount: int) -> None:
        self.earnings += amount

    def pick(self, data, *statuses: int, live: bool = True) -> tuple[int, Policy | None]:
        """A policy id: mostly one of a policy whose status (as stored) is in ``statuses`` and,
        if ``live``, that the next block may still accept or renew, cancel or collect; else
        any; now and then one never offered (then None)."""
        now = latest_timestamp(self.s.chain)
        preferred = [i for i, p in self.policies.items() if p.status in statuses]
        if live:
            preferred = [i for i in preferred if self.alive(self.policies[i], now + 1)] or preferred
        return self.choose(data, preferred)

    def choose(self, data, preferred: list[int]) -> tuple[int, Policy | None]:
        """One of ``preferred`` mostly, else any policy, now and then an unknown id. The draws
        are the same whatever the state: what the chain did depends on its clock, and
        hypothesis wants the same choices to draw the same way."""
        roll = data.draw(st.integers(0, 9), label="roll")
        index = data.draw(st.integers(0, 2**16), label="index")
        pool = sorted(preferred) if preferred and roll < 7 else sorted(self.policies)
        if roll == 9 or not pool:
            return len(self.policies) + 1, None
        pid = pool[index % len(pool)]
        return pid, self.policies[pid]

    @staticmethod
    def alive(p: Policy, t: int) -> bool:
        """Whether at ``t`` ``p`` is an offer not expired or a policy not lapsed."""
        return p.start >= t if p.status == OFFERED else p.covered(t)

    def party(self, p: Policy | None, who: str | int) -> int:
        """The account ``who`` names for ``p`` (see ``acting``)."""
        if isinstance(who, int):
            return who
        if p is None:
            first = ALICE
        elif p.holder != ZERO:
            first = self.role[p.holder]
        else:
            first = self.role[self.owner[p.title]]
        if who == "holder":
            return first
        return BOB if first == ALICE else ALICE

    @staticmethod
    def maximum(p: Policy | None, kind: str, extra: int) -> int:
        """A maximum premium: the policy's premium, above or below it, or too large."""
        premium = p.premium if p else PREMIUM
        return {
            "exact": premium,
            "more": premium + extra,
            "less": max(0, premium - extra),
            "too_large": MAX_PREMIUM + 1,
        }[kind]

    # -- what the contract refuses ---------------------------------------------------------

    def accept_reason(self, p: Policy | None, holder: str, maximum: int, t: int) -> str | None:
        if maximum > MAX_PREMIUM:
            return "insurance: maximum premium too large"
        if p is not None and p.status == ACTIVE:
            return None if holder == p.holder else "insurance: caller is not the holder"
        if p is None or p.status != OFFERED:
            return "insurance: not an open offer"
        if t > p.start:
            return "insurance: offer expired"
        if self.owner[p.title] != holder:
            return "insurance: caller is not the vehicle's owner"
        if not self.insurer_active:
            return "insurance: not an active insurer"
        if maximum < p.premium:
            return "insurance: maximum below the premium"
        return None

    @staticmethod
    def active_reason(p: Policy | None) -> str | None:
        if p is None:
            return "insurance: unknown policy"
        if p.status != ACTIVE:
            return "insurance: policy not active"
        return None

    def renew_reason(self, p: Policy | None, t: int) -> str | None:
        if (reason := self.active_reason(p)) is not None:
            return reason
        if t < p.paid_through:
            return "insurance: term not over"
        if t >= p.paid_through + p.grace:
            return "insurance: grace period over"
        if self.owner[p.title] != p.holder:
            return "insurance: holder no longer owns the vehicle"
        if p.premium > p.max_premium:
            return "insurance: premium above the accepted maximum"
        if not self.insurer_active:
            return "insurance: not an active insurer"
        return None

    # -- offers and acceptances ------------------------------------------------------------

    @initialize(premium=premiums, term=terms, grace=graces, refund_bps=refund_rules)
    def a_first_policy(self, premium: int, term: int, grace: int, refund_bps: int) -> None:
        """Every example starts with a policy on ALICE's vehicle that she accepted."""
        self._offer(0, premium, term, min(grace, term), refund_bps, 3600, INSURER, "accept")
        assert self.policies[1].status == ACTIVE

    @rule(
        which=st.sampled_from((0, 0, 1, 1, 2)),
        premium=premiums,
        term=terms,
        grace=graces,
        refund_bps=refund_rules,
        expiry=st.sampled_from((3600, 3600, 3)),
        caller=st.sampled_from((INSURER, INSURER, INSURER, ALICE)),
        then=st.sampled_from(("accept", None, "accept", "sign")),
        flaw=st.integers(0, 15),
    )
    def offer(self, which, premium, term, grace, refund_bps, expiry, caller, then, flaw):
        """An offer (for an unknown vehicle when ``which`` is 2, by ALICE, who is no insurer;
        now and then, by ``flaw``, with a grace period longer than the term or none, or an
        account for token), then at once accepted by the owner or through the owner's
        signature; none while `LIVE` policies are open or active."""
        if sum(p.status in (OFFERED, ACTIVE) for p in self.policies.values()) >= LIVE:
            return
        grace = {15: grace, 14: 0}.get(flaw, min(grace, term))
        token = self.s[STRANGER].address if flaw == 13 else None
        self._offer(which, premium, term, grace, refund_bps, expiry, caller, then, token)

    def _offer(
        self, which, premium, term, grace, refund_bps, expiry, caller, then, token=None
    ) -> None:
        s = self.s
        title = self.titles[which] if which < len(self.titles) else UNKNOWN_TITLE
        deadline = latest_timestamp(s.chain) + expiry
        token = token or s.token.address
        fn = s.f.offerPolicy(title, token, premium, term, grace, refund_bps, deadline)

        def reason_at(t: int) -> str | None:
            if caller != INSURER or not self.insurer_active:
                return "insurance: not an active insurer"
            if title == UNKNOWN_TITLE:
                return "insurance: unknown vehicle"
            if token != s.token.address:
                return "insurance: token is not a contract"
            if grace == 0:
                return "insurance: zero grace period"
            if grace > term:
                return "insurance: grace period longer than the term"
            if deadline <= t:
                return "insurance: offer expiry passed"
            return None

        receipt, _ = self.attempt(caller, fn, reason_at)
        if receipt is None:
            return
        pid = len(self.policies) + 1
        (offered,) = events(s.chain, receipt, s.insurance, "PolicyOffered")
        assert offered["policy_id"] == pid
        self.policies[pid] = p = Policy(title, premium, term, grace, refund_bps, start=deadline)
        if then == "accept":
            self._accept(pid, p, self.party(p, "holder"), premium)
        elif then == "sign":
            self.submit(self.sign(pid, self.party(p, "holder"), premium))

    @rule(data=st.data(), who=acting, kind=maxima, extra=extras)
    def accept(self, data, who, kind: str, extra: int) -> None:
        """The owner accepts an offer, or the holder a new maximum (others are refused)."""
        pid, p = self.pick(data, OFFERED, ACTIVE)
        self._accept(pid, p, self.party(p, who), self.maximum(p, kind, extra))

    def _accept(self, pid: int, p: Policy | None, caller: int, maximum: int) -> None:
        holder = self.s[caller].address
        receipt, t = self.attempt(
            caller,
            self.s.f.accept(pid, maximum),
            lambda t: self.accept_reason(p, holder, maximum, t),
        )
        if receipt is not None:
            # The caller's signed acceptances not yet submitted are void.
            self.nonces[holder] += 1
            self.accepted(p, holder, maximum, receipt, t)

    @rule(
        data=st.data(),
        who=acting,
        kind=maxima,
        extra=extras,
        forged=st.integers(0, 5),
        expired=st.integers(0, 7),
        mode=st.integers(0, 9),
    )
    def accept_by_signature(
        self, data, who, kind: str, extra: int, forged: int, expired: int, mode: int
    ) -> None:
        """A stranger relays an owner's (or holder's) signed acceptance; now and then the
        signature is someone else's or past its deadline. With ``mode`` 8 the signature is
        kept for later; with 9 one kept earlier is relayed instead, void if the owner accepted
        directly, used a nonce or had another acceptance relayed since."""
        pid, p = self.pick(data, OFFERED, ACTIVE)
        index = data.draw(st.integers(0, 2**16), label="kept")
        if mode == 9 and self.kept:
            self.submit(self.kept.pop(index % len(self.kept)))
            return
        holder, maximum = self.party(p, who), self.maximum(p, kind, extra)
        signed = self.sign(pid, holder, maximum, forged=forged == 5, expired=expired == 7)
        if mode == 8:
            self.kept.append(signed)
        else:
            self.submit(signed)

    def sign(
        self, pid: int, holder: int, maximum: int, *, forged: bool = False, expired: bool = False
    ) -> Signed:
        """``holder``'s acceptance of policy ``pid`` with their next nonce (signed by another
        key if ``forged``; with a deadline already passed if ``expired``)."""
        s = self.s
        deadline = latest_timestamp(s.chain) + (-1 if expired else 3600)
        signer = s[STRANGER if holder != STRANGER else ALICE] if forged else s[holder]
        nonce = self.nonces[s[holder].address]
        _, signature = s.sign_acceptance(
            pid, maximum, signer=signer, holder=s[holder].address, nonce=nonce, deadline=deadline
        )
        return Signed(pid, s[holder].address, maximum, deadline, nonce, signature, forged)

    def submit(self, signed: Signed) -> None:
        """A stranger relays ``signed``."""
        p = self.policies.get(signed.pid)

        def reason_at(t: int) -> str | None:
            if t > signed.deadline:
                return "insurance: signature expired"
            if signed.forged or signed.nonce != self.nonces[signed.holder]:
                return "insurance: invalid signature"
            return self.accept_reason(p, signed.holder, signed.maximum, t)

        fn = self.s.f.acceptWithSignature(
            signed.pid, signed.holder, signed.maximum, signed.deadline, signed.signature
        )
        receipt, t = self.attempt(STRANGER, fn, reason_at)
        if receipt is not None:
            self.nonces[signed.holder] += 1
            self.accepted(p, signed.holder, signed.maximum, receipt, t)

    def accepted(self, p: Policy, holder: str, maximum: int, receipt: Any, t: int) -> None:
        """The model after an accepted offer (the first premium pulled, the term starting at the
        block's timestamp) or a new maximum."""
        s = self.s
        if p.status == ACTIVE:
            (logged,) = events(s.chain, receipt, s.insurance, "MaxPremiumAccepted")
            assert logged["max_premium"] == maximum
            p.max_premium = maximum
            return
        pulled = [
            e["value"]
            for e in events(s.chain, receipt, s.token, "Transfer")
            if e["sender"] == holder and e["receiver"] == s.insurance.address
        ]
        assert pulled == [p.premium]
        p.status, p.holder, p.max_premium = ACTIVE, holder, maximum
        p.start, p.paid, p.credited = t, p.premium, 0
        self.pay(holder, s.insurance.address, p.premium)

    # -- the insurer -----------------------------------------------------------------------

    @rule(
        data=st.data(),
        caller=st.sampled_from((INSURER, INSURER, INSURER, ALICE, STRANGER)),
        kind=st.sampled_from(("above", "above", "within", "within", "zero", "too_large")),
        extra=extras,
    )
    def set_premium(self, data, caller: int, kind: str, extra: int) -> None:
        """The insurer sets the premium of the next renewals above or within the holder's
        accepted maximum (others are refused)."""
        pid, p = self.pick(data, ACTIVE)
        cap = p.max_premium if p else PREMIUM
        premium = {
            "above": cap + extra,
            "within": cap - extra % cap if cap else 1,
            "zero": 0,
            "too_large": MAX_PREMIUM + 1,
        }[kind]
        reason = self.active_reason(p)
        if reason is None and caller != INSURER:
            reason = "insurance: caller is not the insurer"
        elif reason is None and premium == 0:
            reason = "insurance: zero premium"
        elif reason is None and premium > MAX_PREMIUM:
            reason = "insurance: premium too large"
        receipt, _ = self.attempt(caller, self.s.f.setPremium(pid, premium), lambda t: reason)
        if receipt is not None:
            p.premium = premium

    # -- renewals, lapses, cancellations, collections --------------------------------------

    @rule(data=st.data(), caller=anyone, wait=waits, refused=st.integers(0, 3))
    def renew(self, data, caller: int, wait: bool, refused: int) -> None:
        """A keeper (or anyone) renews a policy, when due if ``wait``: first the time passes to
        the end of its term. Now and then (``refused`` 3) a policy whose premium is above the
        accepted maximum or whose holder sold the vehicle, if any: refused, nothing changes."""
        if refused == 3:
            pid, p = self.choose(data, [i for i, p in self.policies.items() if self.stuck(p)])
        else:
            pid, p = self.pick(data, ACTIVE)
        self._renew(pid, p, caller, wait)

    def stuck(self, p: Policy) -> bool:
        """Whether ``p`` is active and its renewal is refused whatever the time."""
        return p.status == ACTIVE and (p.premium > p.max_premium or self.owner[p.title] != p.holder)

    def _renew(self, pid: int, p: Policy | None, caller: int, wait: bool) -> None:
        s = self.s
        if wait and p is not None and p.status == ACTIVE:
            self.wait_until(p.paid_through)
        receipt, _ = self.attempt(caller, s.f.renew(pid), lambda t: self.renew_reason(p, t))
        if receipt is None:
            return
        # The property: the premium pulled is the current one, never above the maximum.
        pulled = [
            e["value"]
            for e in events(s.chain, receipt, s.token, "Transfer")
            if e["sender"] == p.holder and e["receiver"] == s.insurance.address
        ]
        assert pulled == [p.premium] and p.premium <= p.max_premium, (pulled, p)
        # The next term starts where the last one ended: exactly a term more.
        (renewed,) = events(s.chain, receipt, s.insurance, "PolicyRenewed")
        assert (renewed["start"], renewed["paid_through"]) == (
            p.paid_through,
            p.paid_through + p.term,
        )
        # The ended term's premium is all earned.
        assert self.credited(receipt) == ([p.held] if p.held else [])
        self.credit(p.held)
        p.start, p.paid, p.credited = p.paid_through, p.premium, 0
        self.pay(p.holder, s.insurance.address, p.premium)

    @rule(data=st.data(), caller=anyone, wait=waits)
    def lapse(self, data, caller: int, wait: bool) -> None:
        """Anyone lapses a policy (if ``wait``, after its grace period)."""
        pid, p = self.pick(data, ACTIVE, live=False)
        if wait and p is not None and p.status == ACTIVE:
            self.wait_until(p.paid_through + p.grace)

        def reason_at(t: int) -> str | None:
            if (reason := self.active_reason(p)) is not None:
                return reason
            return None if t >= p.paid_through + p.grace else "insurance: grace period not over"

        receipt, _ = self.attempt(caller, self.s.f.lapse(pid), reason_at)
        if receipt is not None:
            assert self.credited(receipt) == ([p.held] if p.held else [])
            self.credit(p.held)
            p.close(LAPSED)

    @rule(
        data=st.data(),
        who=st.sampled_from(("holder", "holder", "holder", "other", INSURER)),
        when=st.sampled_from(("later", "now", "later", "grace")),
        seconds=st.integers(1, 4),
    )
    def cancel(self, data, who, when: str, seconds: int) -> None:
        """The holder cancels (others are refused): now, a few seconds later, or in the grace
        period. The refund is the refund rule's share of the unearned premium at the block's
        timestamp, the rest is credited to the insurer."""
        pid, p = self.pick(data, ACTIVE)
        if p is not None and p.status == ACTIVE and when != "now":
            now = latest_timestamp(self.s.chain)
            self.wait_until(now + seconds if when == "later" else p.paid_through)
        caller = self.party(p, who)

        def reason_at(t: int) -> str | None:
            if (reason := self.active_reason(p)) is not None:
                return reason
            if self.s[caller].address != p.holder:
                return "insurance: caller is not the holder"
            if t >= p.paid_through + p.grace:
                return "insurance: policy lapsed"
            return None

        receipt, t = self.attempt(caller, self.s.f.cancel(pid), reason_at)
        if receipt is None:
            return
        refund = p.refund(t)
        assert refund <= p.held
        (cancelled,) = events(self.s.chain, receipt, self.s.insurance, "PolicyCancelled")
        assert cancelled["refund"] == refund
        rest = p.held - refund
        assert self.credited(receipt) == ([rest] if rest else [])
        self.credit(rest)
        self.pay(self.s.insurance.address, p.holder, refund)
        p.close(CANCELLED)

    @rule(data=st.data(), caller=anyone)
    def collect(self, data, caller: int) -> None:
        """Anyone credits the insurer with the premium earned so far."""
        pid, p = self.pick(data, ACTIVE)
        receipt, t = self.attempt(caller, self.s.f.collect(pid), lambda t: self.active_reason(p))
        if receipt is not None:
            amount = p.earned(t) - p.credited
            assert self.credited(receipt) == ([amount] if amount else [])
            self.credit(amount)
            p.credited += amount

    @rule(data=st.data(), to=ends, seconds=st.integers(1, 4))
    def time_passes(self, data, to: str, seconds: int) -> None:
        """Time passes: to the end of a policy's term (into its grace period), to the end of
        its grace period, or by a few seconds."""
        index = data.draw(st.integers(0, 2**16), label="index")
        now = latest_timestamp(self.s.chain)
        pending = sorted(
            i
            for i, p in self.policies.items()
            if p.status == ACTIVE and p.paid_through + p.grace > now
        )
        if to == "seconds" or not pending:
            self.wait_until(now + seconds)
            return
        p = self.policies[pending[index % len(pending)]]
        self.wait_until(p.paid_through if to == "term" else p.paid_through + p.grace)

    # -- the rarer changes -----------------------------------------------------------------

    @rule(
        action=st.sampled_from(
            ("pay_claim", "sell", "withdraw_earnings", "use_nonce", "pay_claim", "sell")
            + ("withdraw_earnings", "withdraw_offer", "toggle_insurer")
        ),
        data=st.data(),
    )
    def act(self, action: str, data) -> None:
        """One of the rarer changes: the insurer's (tried by others too), a vehicle sold, a
        nonce used up, or the platform (de)activating the insurer."""
        getattr(self, action)(data)

    def withdraw_earnings(self, data) -> None:
        """The insurer's earnings to its payout, less the fee of its tier to the treasury."""
        s = self.s
        caller = data.draw(st.sampled_from((INSURER, INSURER, INSURER, STRANGER)), label="caller")
        owed = self.earnings if caller == INSURER else 0
        reason = None if owed else "insurance: no earnings"
        receipt, _ = self.attempt(caller, s.f.withdrawEarnings(s.token.address), lambda t: reason)
        if receipt is None:
            return
        fee = owed * FEE_BPS // 10_000
        (logged,) = events(s.chain, receipt, s.insurance, "EarningsWithdrawn")
        assert (logged["amount"], logged["fee"]) == (owed, fee)
        self.pay(s.insurance.address, s[TREASURY].address, fee)
        self.pay(s.insurance.address, s[PAYOUT].address, owed - fee)
        self.earnings = 0

    def pay_claim(self, data) -> None:
        """The insurer pays a claim to the holder from its own funds, once per reference."""
        s = self.s
        pid, p = self.pick(data, ACTIVE, LAPSED, CANCELLED, live=False)
        caller = data.draw(st.sampled_from((INSURER, INSURER, INSURER, ALICE)), label="caller")
        amount = data.draw(st.one_of(st.integers(1, 10**9), st.just(0)), label="amount")
        reference = data.draw(st.integers(0, 3), label="reference")
        if p is None or p.status not in (ACTIVE, LAPSED, CANCELLED):
            reason = "insurance: policy never started"
        elif caller != INSURER:
            reason = "insurance: caller is not the insurer"
        elif amount == 0:
            reason = "insurance: zero amount"
        elif (pid, reference) in self.references:
            reason = "insurance: claim already paid"
        else:
            reason = None
        fn = s.f.payClaim(pid, amount, reference.to_bytes(32, "big"))
        receipt, _ = self.attempt(caller, fn, lambda t: reason)
        if receipt is not None:
            self.pay(s[INSURER].address, p.holder, amount)
            p.claims += amount
            self.claim_count[p.title] += 1
            self.references.add((pid, reference))

    def use_nonce(self, data) -> None:
        """An owner (or anyone) uses up their next nonce: what they signed with it is void."""
        caller = data.draw(st.sampled_from((ALICE, BOB, STRANGER)), label="caller")
        address = self.s[caller].address
        receipt, _ = self.attempt(caller, self.s.f.useNonce(), lambda t: None)
        (used,) = events(self.s.chain, receipt, self.s.insurance, "NonceUsed")
        assert (used["owner"], used["nonce"]) == (address, self.nonces[address])
        self.nonces[address] += 1

    def sell(self, data) -> None:
        """A vehicle's owner sells it to the other party (anyone else is refused): a policy
        does not pass to the buyer, and its renewals are refused until the holder owns the
        vehicle again."""
        s = self.s
        title = data.draw(st.sampled_from(self.titles), label="title")
        seller = self.role[self.owner[title]]
        buyer = BOB if seller == ALICE else ALICE
        caller = data.draw(st.sampled_from((seller, seller, buyer)), label="caller")
        fn = s.vehicles.f.transferFrom(s[seller].address, s[buyer].address, title)
        reason = None if caller == seller else "erc721: caller is not token owner or approved"
        receipt, _ = self.attempt(caller, fn, lambda t: reason)
        if receipt is not None:
            self.owner[title] = s[buyer].address

    def withdraw_offer(self, data) -> None:
        """The insurer withdraws an offer nobody accepted."""
        pid, p = self.pick(data, OFFERED, live=False)
        caller = data.draw(st.sampled_from((INSURER, INSURER, ALICE)), label="caller")
        if p is None or p.status != OFFERED:
            reason = "insurance: not an open offer"
        elif caller != INSURER:
            reason = "insurance: caller is not the insurer"
        else:
            reason = None
        receipt, _ = self.attempt(caller, self.s.f.withdrawOffer(pid), lambda t: reason)
        if receipt is not None:
            p.status = WITHDRAWN

    def toggle_insurer(self, data) -> None:
        """The platform deactivates the insurer (no offers, acceptances or renewals), or
        activates it again."""
        s = self.s
        active = not self.insurer_active
        fn = s.merchants.functions.setActive(s[INSURER].address, active)
        self.attempt(OWNER, fn, lambda t: None)
        self.insurer_active = active

    # -- invariants ------------------------------------------------------------------------

    def clock(self) -> int:
        """The timestamp the node runs an ``eth_call`` on the latest block at (see `CLOCK`)."""
        (answer,) = self.s.chain.batch([("eth_call", [{"data": CLOCK}, "latest"])])
        return int(answer, 16)

    def read(self, number: int, calls: dict[Any, tuple]) -> tuple[int, dict[Any, Any]]:
        """The results of the view calls ``{key: (contract, function, args)}``, all at block
        ``number``, in one JSON-RPC batch (web3's contract calls would cost a request, and a
        chain id request, each), with the timestamp they ran at: read between two readings of
        the clock, again until both agree."""
        payload, kinds = [], []
        for contract, name, args in calls.values():
            data = contract.encode_abi(name, args=list(args))
            payload.append(("eth_call", [{"to": contract.address, "data": data}, hex(number)]))
            kinds.append(get_abi_output_types(contract.get_function_by_name(name).abi))
        clock = ("eth_call", [{"data": CLOCK}, hex(number)])
        for _ in range(5):
            first, *answers, last = self.s.chain.batch([clock, *payload, clock])
            if first == last:
                break
        else:
            raise AssertionError("the node's clock moved during every reading")
        results = {}
        for key, types, answer in zip(calls, kinds, answers, strict=True):
            values = abi_decode(types, bytes.fromhex(answer[2:]))
            results[key] = values[0] if len(values) == 1 else values
        return int(first, 16), results

    def snapshot(self) -> tuple[int, dict[Any, Any]]:
        """Everything the invariants read, at the latest block, and the timestamp it was read
        at (read once per block: nothing changes without one)."""
        number = self.s.chain.w3.eth.block_number
        if self.snapshot_cache is not None and self.snapshot_cache[0] == number:
            return self.snapshot_cache[1:]
        s, ins = self.s, self.s.insurance
        calls: dict[Any, tuple] = {("balance", a): (s.token, "balanceOf", [a]) for a in self.delta}
        calls["earnings"] = (ins, "earnings", [s[INSURER].address, s.token.address])
        calls["count"] = (ins, "policyCount", [])
        for address in self.nonces:
            calls[("nonce", address)] = (ins, "nonces", [address])
        for title in self.titles:
            calls[("claims", title)] = (ins, "claimCount", [title])
        views = ("isCovered", "paidThrough", "collectable", "cancellationRefund")
        for pid, p in self.policies.items():
            calls[("policy", pid)] = (ins, "policy", [pid])
            calls[("claimsPaid", pid)] = (ins, "claimsPaid", [pid])
            if p.status in (OFFERED, ACTIVE) or pid not in self.ended:
                for view in views:
                    calls[(view, pid)] = (ins, view, [pid])
        self.snapshot_cache = (number, *self.read(number, calls))
        return self.snapshot_cache[1:]

    @invariant()
    def money_is_conserved(self) -> None:
        """The contract holds what is held of the current terms' premiums plus the insurer's
        unwithdrawn earnings, and nothing else."""
        _, r = self.snapshot()
        held = sum(p.held for p in self.policies.values() if p.status == ACTIVE)
        assert all(p.held == 0 for p in self.policies.values() if p.status != ACTIVE)
        assert r["earnings"] == self.earnings
        assert r[("balance", self.s.insurance.address)] == held + r["earnings"]

    @invariant()
    def balances_match(self) -> None:
        _, r = self.snapshot()
        for address in self.watched:
            assert r[("balance", address)] - self.baseline[address] == self.delta[address], address

    @invariant()
    def policies_match(self) -> None:
        """Each policy reads as the model's at the block's timestamp; paid-through dates never
        go back."""
        t, r = self.snapshot()
        s = self.s
        assert r["count"] == len(self.policies)
        for address, nonce in self.nonces.items():
            assert r[("nonce", address)] == nonce
        for title, count in self.claim_count.items():
            assert r[("claims", title)] == count
        for pid, p in self.policies.items():
            read = dict(zip(POLICY_FIELDS, r[("policy", pid)], strict=True))
            for field in ("insurer", "token", "holder"):
                read[field] = to_checksum_address(read[field])
            started = p.status not in (OFFERED, WITHDRAWN)
            assert read == {
                "insurer": s[INSURER].address,
                "title": p.title,
                "token": s.token.address,
                "premium": p.premium,
                "term": p.term,
                "grace": p.grace,
                "refund_bps": p.refund_bps,
                "holder": p.holder,
                "max_premium": p.max_premium,
                "start": p.start,
                "paid_through": p.paid_through if started else 0,
                "status": p.status_at(t),
            }, (pid, t)
            assert r[("claimsPaid", pid)] == p.claims
            last = self.last_paid_through.get(pid, 0)
            assert read["paid_through"] >= last, (pid, read["paid_through"], last)
            self.last_paid_through[pid] = read["paid_through"]
            if ("isCovered", pid) not in r:
                continue  # ended, and read in full since
            assert r[("isCovered", pid)] is p.covered(t), (pid, t)
            assert r[("paidThrough", pid)] == read["paid_through"]
            active = p.status == ACTIVE
            assert r[("collectable", pid)] == (p.earned(t) - p.credited if active else 0), (pid, t)
            assert r[("cancellationRefund", pid)] == (p.refund(t) if active else 0), (pid, t)
            if p.status not in (OFFERED, ACTIVE):
                self.ended.add(pid)


def test_insurance_state(chain, accounts):
    profiles.run(InsuranceMachine, "insurance-short", chain=chain, accounts=accounts, worlds={})


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_insurance_state_long(chain, accounts):
    profiles.run(InsuranceMachine, "insurance-long", chain=chain, accounts=accounts, worlds={})
