"""traffic_fines.vy: fines issued by authorities against a vehicle, paid by its owner (with the
late fee after the due date), waived by the authority; every function, refusal and event, on
both nodes."""

from __future__ import annotations

import pytest

from carpay.chain import contract
from carpay.errors import TransactionReverted
from tests.contracts.checkout_fixtures import ZERO, advance_past, events, latest_timestamp, reverts
from tests.contracts.vehicle_fixtures import (
    ALICE,
    AUTHORITY,
    AUTHORITY_CATEGORY,
    BOB,
    FUNDS,
    LENDER,
    OWNER,
    PAYOUT,
    REGISTRAR,
    STRANGER,
    VINS,
    deploy_fines,
)

NOT_AUTHORITY = "traffic_fines: caller is not an active authority"
NOT_VEHICLE_OWNER = "traffic_fines: caller is not the vehicle's owner"
NOT_ISSUER = "traffic_fines: caller is not the issuing authority"
UNPAID, PAID, WAIVED = 1, 2, 3
AMOUNT, LATE_FEE = 50 * 10**6, 10 * 10**6
#: Seconds to a due date that a test lets pass: the embedded node's clock is the wall clock
#: (or one second per block), so a test waits for whatever it lets pass.
SOON = 8


@pytest.fixture
def w(chain, accounts):
    """Registries, fines and a token; ALICE owns the vehicle VINS[0] and holds FUNDS."""
    world = deploy_fines(chain, accounts)
    world.title = world.vehicles.mint(VINS[0], ALICE)
    return world


@pytest.fixture
def fine_id(w):
    """A fine of 50.00 (late fee 10.00, due in an hour, reason 1) against ALICE's vehicle."""
    return w.issue(w.title)


def fine_of(w, fine_id):
    return dict(
        zip(
            ("authority", "title", "token", "amount", "late_fee", "due", "reason", "status"),
            w.f.fine(fine_id).call(),
            strict=True,
        )
    )


def test_deploy_binds_the_registries(w):
    f = w.f
    assert f.merchants().call() == w.merchants.address
    assert f.vehicles().call() == w.vehicles.registry.address
    assert f.fineCount().call() == 0
    assert f.AUTHORITY_CATEGORY().call() == AUTHORITY_CATEGORY
    assert f.MAX_UNPAID().call() == 64
    assert f.MAX_AMOUNT().call() == 2**128 - 1
    assert f.MAX_LATE_FEE().call() == 2**96 - 1
    statuses = [f.STATUS_NONE(), f.STATUS_UNPAID(), f.STATUS_PAID(), f.STATUS_WAIVED()]
    assert [s.call() for s in statuses] == [0, UNPAID, PAID, WAIVED]


@pytest.mark.parametrize("which", [0, 1])
def test_deploy_refuses_zero_registries(chain, accounts, w, which):
    args = [w.merchants.address, w.vehicles.registry.address]
    args[which] = ZERO
    with pytest.raises(TransactionReverted) as info:
        chain.deploy(contract("traffic_fines"), *args, sender=accounts[OWNER])
    assert info.value.reason == "traffic_fines: zero address"


# -- issuing --------------------------------------------------------------------------------


def test_an_authority_issues_a_fine(chain, w):
    f, authority = w.f, w[AUTHORITY]
    due = latest_timestamp(chain) + 86_400
    fn = f.issueFine(w.title, w.token.address, AMOUNT, LATE_FEE, due, 312)
    assert chain.call(fn, sender=authority) == 1
    receipt = chain.transact(authority, fn)
    assert events(chain, receipt, w.fines, "FineIssued") == [
        {
            "fine_id": 1,
            "title": w.title,
            "authority": authority.address,
            "token": w.token.address,
            "amount": AMOUNT,
            "late_fee": LATE_FEE,
            "due": due,
            "reason": 312,
        }
    ]
    assert f.fineCount().call() == 1
    assert fine_of(w, 1) == {
        "authority": authority.address,
        "title": w.title,
        "token": w.token.address,
        "amount": AMOUNT,
        "late_fee": LATE_FEE,
        "due": due,
        "reason": 312,
        "status": UNPAID,
    }
    assert f.unpaidFines(w.title).call() == [1]
    assert f.amountDue(1).call() == AMOUNT
    assert f.outstanding(w.title).call() == AMOUNT


def test_fines_carry_the_largest_values(chain, w):
    due = 2**64 - 1
    fn = w.f.issueFine(w.title, w.token.address, 2**128 - 1, 2**96 - 1, due, 2**16 - 1)
    chain.transact(w[AUTHORITY], fn)
    fine = fine_of(w, 1)
    assert (fine["amount"], fine["late_fee"], fine["due"], fine["reason"]) == (
        2**128 - 1,
        2**96 - 1,
        due,
        2**16 - 1,
    )
    assert fine["status"] == UNPAID


@pytest.mark.parametrize("caller", [OWNER, REGISTRAR, ALICE, STRANGER, PAYOUT])
def test_only_authorities_issue_fines(chain, w, caller):
    fn = w.f.issueFine(w.title, w.token.address, AMOUNT, 0, latest_timestamp(chain) + 60, 1)
    assert reverts(chain, w[caller], fn) == NOT_AUTHORITY


def test_a_merchant_of_another_category_cannot_fine(chain, w):
    other = w[LENDER]
    chain.transact(
        w[OWNER], w.merchants.functions.registerMerchant(other.address, 5, other.address, 0)
    )
    fn = w.f.issueFine(w.title, w.token.address, AMOUNT, 0, latest_timestamp(chain) + 60, 1)
    assert reverts(chain, other, fn) == NOT_AUTHORITY


def test_an_inactive_authority_cannot_fine(chain, w):
    chain.transact(w[OWNER], w.merchants.functions.setActive(w[AUTHORITY].address, False))
    fn = w.f.issueFine(w.title, w.token.address, AMOUNT, 0, latest_timestamp(chain) + 60, 1)
    assert reverts(chain, w[AUTHORITY], fn) == NOT_AUTHORITY


def test_issue_fine_refusals(chain, w):
    f, token, later = w.f, w.token.address, latest_timestamp(chain) + 3600
    cases = [
        ((w.title + 1, token, AMOUNT, 0, later, 1), "traffic_fines: unknown vehicle"),
        ((w.title, ZERO, AMOUNT, 0, later, 1), "traffic_fines: zero token"),
        ((w.title, token, 0, 0, later, 1), "traffic_fines: zero amount"),
        ((w.title, token, 2**128, 0, later, 1), "traffic_fines: amount too large"),
        ((w.title, token, AMOUNT, 2**96, later, 1), "traffic_fines: late fee too large"),
        ((w.title, token, AMOUNT, 0, latest_timestamp(chain), 1), "traffic_fines: due date passed"),
        ((w.title, token, AMOUNT, 0, 2**64, 1), "traffic_fines: due date too far"),
    ]
    for args, reason in cases:
        assert reverts(chain, w[AUTHORITY], f.issueFine(*args)) == reason
    assert f.fineCount().call() == 0


def test_a_vehicle_has_at_most_64_unpaid_fines(chain, w):
    ids = [w.issue(w.title, 1 + i) for i in range(64)]
    assert sorted(w.f.unpaidFines(w.title).call()) == ids
    fn = w.f.issueFine(w.title, w.token.address, 1, 0, latest_timestamp(chain) + 3600, 1)
    assert reverts(chain, w[AUTHORITY], fn) == "traffic_fines: too many unpaid fines"
    assert w.f.outstanding(w.title).call() == sum(range(1, 65))
    chain.transact(w[AUTHORITY], w.f.waiveFine(ids[10]))
    assert w.issue(w.title) == 65


# -- paying ---------------------------------------------------------------------------------


def test_the_owner_pays_on_time(chain, w, fine_id):
    f, alice = w.f, w[ALICE]
    before = w.balance(alice), w.balance(w[PAYOUT])
    receipt = chain.transact(alice, f.payFine(fine_id))
    assert events(chain, receipt, w.fines, "FinePaid") == [
        {
            "fine_id": fine_id,
            "title": w.title,
            "payer": alice.address,
            "authority": w[AUTHORITY].address,
            "payout": w[PAYOUT].address,
            "token": w.token.address,
            "paid": AMOUNT,
            "late_fee": 0,
        }
    ]
    assert events(chain, receipt, w.token, "Transfer") == [
        {"sender": alice.address, "receiver": w[PAYOUT].address, "value": AMOUNT}
    ]
    assert (w.balance(alice), w.balance(w[PAYOUT])) == (before[0] - AMOUNT, before[1] + AMOUNT)
    assert fine_of(w, fine_id)["status"] == PAID
    assert f.unpaidFines(w.title).call() == []
    assert f.amountDue(fine_id).call() == 0
    assert f.outstanding(w.title).call() == 0


def test_after_the_due_date_the_late_fee_is_added(chain, w):
    f, alice = w.f, w[ALICE]
    due = latest_timestamp(chain) + SOON
    fine_id = w.issue(w.title, due=due)
    assert f.amountDue(fine_id).call() == AMOUNT
    advance_past(chain, due, w[STRANGER])
    assert f.amountDue(fine_id).call() == AMOUNT + LATE_FEE
    assert f.outstanding(w.title).call() == AMOUNT + LATE_FEE
    before = w.balance(alice)
    receipt = chain.transact(alice, f.payFine(fine_id))
    (paid,) = events(chain, receipt, w.fines, "FinePaid")
    assert (paid["paid"], paid["late_fee"]) == (AMOUNT + LATE_FEE, LATE_FEE)
    assert w.balance(alice) == before - AMOUNT - LATE_FEE
    assert w.balance(w[PAYOUT]) == AMOUNT + LATE_FEE


@pytest.mark.parametrize("caller", [BOB, AUTHORITY, STRANGER, REGISTRAR])
def test_only_the_vehicle_owner_pays(chain, w, fine_id, caller):
    assert reverts(chain, w[caller], w.f.payFine(fine_id)) == NOT_VEHICLE_OWNER


def test_a_fine_stays_with_the_vehicle_when_it_is_sold(chain, w, fine_id):
    alice, bob, titles = w[ALICE], w[BOB], w.vehicles.f
    chain.transact(alice, titles.transferFrom(alice.address, bob.address, w.title))
    assert w.f.unpaidFines(w.title).call() == [fine_id]
    assert reverts(chain, alice, w.f.payFine(fine_id)) == NOT_VEHICLE_OWNER
    receipt = chain.transact(bob, w.f.payFine(fine_id))
    assert events(chain, receipt, w.fines, "FinePaid")[0]["payer"] == bob.address
    assert w.balance(bob) == FUNDS - AMOUNT


def test_payment_goes_to_the_authority_current_payout_even_when_inactive(chain, w, fine_id):
    m = w.merchants.functions
    chain.transact(w[OWNER], m.setPayout(w[AUTHORITY].address, w[LENDER].address))
    chain.transact(w[OWNER], m.setActive(w[AUTHORITY].address, False))
    chain.transact(w[ALICE], w.f.payFine(fine_id))
    assert w.balance(w[LENDER]) == AMOUNT
    assert w.balance(w[PAYOUT]) == 0


def test_a_fine_is_paid_once(chain, w, fine_id):
    chain.transact(w[ALICE], w.f.payFine(fine_id))
    assert reverts(chain, w[ALICE], w.f.payFine(fine_id)) == "traffic_fines: fine already paid"
    assert w.balance(w[ALICE]) == FUNDS - AMOUNT


def test_unknown_and_waived_fines_cannot_be_paid(chain, w, fine_id):
    assert reverts(chain, w[ALICE], w.f.payFine(fine_id + 1)) == "traffic_fines: unknown fine"
    assert reverts(chain, w[ALICE], w.f.payFine(0)) == "traffic_fines: unknown fine"
    chain.transact(w[AUTHORITY], w.f.waiveFine(fine_id))
    assert reverts(chain, w[ALICE], w.f.payFine(fine_id)) == "traffic_fines: fine waived"


def test_the_token_refuses_a_payment_without_allowance_or_funds(chain, w, fine_id):
    alice, token = w[ALICE], w.token.functions
    chain.transact(alice, token.approve(w.fines.address, AMOUNT - 1))
    assert reverts(chain, alice, w.f.payFine(fine_id)) == "currency_token: insufficient allowance"
    chain.transact(alice, token.approve(w.fines.address, AMOUNT))
    chain.transact(alice, token.transfer(w[STRANGER].address, FUNDS - AMOUNT + 1))
    assert reverts(chain, alice, w.f.payFine(fine_id)) == (
        "currency_token: transfer amount exceeds balance"
    )
    assert fine_of(w, fine_id)["status"] == UNPAID


# -- waiving --------------------------------------------------------------------------------


def test_the_authority_waives_a_fine(chain, w, fine_id):
    f = w.f
    receipt = chain.transact(w[AUTHORITY], f.waiveFine(fine_id))
    assert events(chain, receipt, w.fines, "FineWaived") == [
        {"fine_id": fine_id, "title": w.title, "authority": w[AUTHORITY].address}
    ]
    assert fine_of(w, fine_id)["status"] == WAIVED
    assert f.unpaidFines(w.title).call() == []
    assert f.amountDue(fine_id).call() == 0
    assert f.outstanding(w.title).call() == 0


def test_an_inactive_authority_still_waives_its_fines(chain, w, fine_id):
    chain.transact(w[OWNER], w.merchants.functions.setActive(w[AUTHORITY].address, False))
    chain.transact(w[AUTHORITY], w.f.waiveFine(fine_id))
    assert fine_of(w, fine_id)["status"] == WAIVED


@pytest.mark.parametrize("caller", [OWNER, ALICE, STRANGER, "other authority"])
def test_only_the_issuing_authority_waives(chain, w, fine_id, caller):
    if caller == "other authority":
        other = w[LENDER]
        chain.transact(
            w[OWNER],
            w.merchants.functions.registerMerchant(
                other.address, AUTHORITY_CATEGORY, other.address, 0
            ),
        )
        caller = LENDER
    assert reverts(chain, w[caller], w.f.waiveFine(fine_id)) == NOT_ISSUER


def test_waive_refusals(chain, w, fine_id):
    f, authority = w.f, w[AUTHORITY]
    assert reverts(chain, authority, f.waiveFine(fine_id + 1)) == "traffic_fines: unknown fine"
    second = w.issue(w.title)
    chain.transact(w[ALICE], f.payFine(second))
    assert reverts(chain, authority, f.waiveFine(second)) == "traffic_fines: fine already paid"
    chain.transact(authority, f.waiveFine(fine_id))
    assert reverts(chain, authority, f.waiveFine(fine_id)) == "traffic_fines: fine waived"


# -- what a buyer sees ----------------------------------------------------------------------


def test_unpaid_fines_stay_consistent_as_fines_close(chain, w):
    """Closing a fine moves the last one into its place; every later close still finds its
    own entry."""
    f, alice = w.f, w[ALICE]
    other = w.vehicles.mint(VINS[1], BOB)
    ids = [w.issue(w.title, amount, reason=amount) for amount in (1, 2, 3, 4, 5)]
    elsewhere = w.issue(other, 100)
    issued = {i: fine_of(w, i) for i in ids}

    def untouched(*open_ids: int) -> bool:
        """The fines still open read as issued (the one moved into a closed one's place too)."""
        return all(fine_of(w, i) == issued[i] for i in open_ids)

    chain.transact(alice, f.payFine(ids[1]))
    assert sorted(f.unpaidFines(w.title).call()) == [ids[0], ids[2], ids[3], ids[4]]
    assert untouched(ids[0], ids[2], ids[3], ids[4])
    chain.transact(w[AUTHORITY], f.waiveFine(ids[0]))
    chain.transact(alice, f.payFine(ids[4]))
    assert sorted(f.unpaidFines(w.title).call()) == [ids[2], ids[3]]
    assert untouched(ids[2], ids[3])
    assert f.outstanding(w.title).call() == 3 + 4
    chain.transact(alice, f.payFine(ids[3]))
    chain.transact(alice, f.payFine(ids[2]))
    assert f.unpaidFines(w.title).call() == []
    assert f.unpaidFines(other).call() == [elsewhere]
    assert f.outstanding(other).call() == 100
    assert w.balance(w[PAYOUT]) == 2 + 5 + 4 + 3


def test_outstanding_totals_per_token_and_late_fees_only_when_late(chain, w):
    f = w.f
    dollar = chain.contract(
        "currency_token",
        chain.deploy("currency_token", "Carpay Dollar", "cUSD", "USD", "2", sender=w[OWNER]),
    )
    w.issue(w.title, 200, late_fee=9)
    soon = latest_timestamp(chain) + SOON
    w.issue(w.title, 100, late_fee=7, due=soon)
    chain.transact(w[AUTHORITY], f.issueFine(w.title, dollar.address, 1_000, 50, soon, 2))
    outstanding_in = f.outstanding(w.title, w.token.address)
    assert outstanding_in.call() == 300
    assert f.outstanding(w.title, dollar.address).call() == 1_000
    assert f.outstanding(w.title).call() == 1_300
    advance_past(chain, soon, w[STRANGER])
    assert f.outstanding(w.title, w.token.address).call() == 300 + 7
    assert f.outstanding(w.title, dollar.address).call() == 1_000 + 50
    assert f.outstanding(w.title, w[STRANGER].address).call() == 0
    assert f.outstanding(w.title + 1).call() == 0
    assert f.unpaidFines(w.title + 1).call() == []


def test_unknown_fines_read_as_zero(w):
    assert fine_of(w, 7) == {
        "authority": ZERO,
        "title": 0,
        "token": ZERO,
        "amount": 0,
        "late_fee": 0,
        "due": 0,
        "reason": 0,
        "status": 0,
    }
    assert w.f.amountDue(7).call() == 0


# -- gas ------------------------------------------------------------------------------------


def test_gas_per_operation(chain, w, record_property):
    """What issuing, paying and waiving cost (recorded as test properties; bounds catch
    regressions)."""
    f, used = w.f, {}
    soon = latest_timestamp(chain) + SOON
    receipt = chain.transact(
        w[AUTHORITY], f.issueFine(w.title, w.token.address, AMOUNT, LATE_FEE, soon, 1)
    )
    used["issue first fine"] = receipt["gasUsed"]
    for _ in range(2):
        w.issue(w.title)
    receipt = chain.transact(
        w[AUTHORITY], f.issueFine(w.title, w.token.address, AMOUNT, LATE_FEE, soon + 3600, 1)
    )
    used["issue fine"] = receipt["gasUsed"]
    used["pay fine"] = chain.transact(w[ALICE], f.payFine(2))["gasUsed"]
    used["waive fine"] = chain.transact(w[AUTHORITY], f.waiveFine(3))["gasUsed"]
    advance_past(chain, soon, w[STRANGER])
    used["pay fine late"] = chain.transact(w[ALICE], f.payFine(1))["gasUsed"]
    for name, gas in used.items():
        record_property(f"gas {name}", gas)
    print(used)
    # A fine is four words (authority, reason, status, list slot and due date packed in one;
    # token and late fee in another; title; amount) plus its entry in the vehicle's list.
    assert used["issue first fine"] < 200_000
    assert used["issue fine"] < 165_000
    # The first payment to the payout creates its balance word; later ones only add to it.
    assert used["pay fine"] < 110_000
    assert used["pay fine late"] < 95_000
    assert used["waive fine"] < 45_000
