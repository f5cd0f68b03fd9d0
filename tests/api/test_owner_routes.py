"""Tests of what a vehicle's owner does through the API, from the key the platform holds for
them: pay a fine, accept and cancel a policy, sell the car by escrow (carpay/api/routes/
fines.py, policies.py, escrows.py and carpay/services/fines.py, policies.py, escrows.py).

Each spend is an approval and the call that uses it, sent in order from the owner's key; every
refusal writes nothing.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from carpay.accounts import Keyring, participants
from carpay.chain import Chain
from carpay.chain.node.node import dev_accounts
from carpay.ledger import Indexer
from carpay.ledger.models import OutboxIntent
from carpay.services.platform import CATEGORIES, deploy_platform
from tests.api.conftest import bearer, chain_clock, make_key, post, relay_and_index
from tests.api.test_problems import assert_problem

OWNER, TREASURY, AUTHORITY, INSURER, DRIVER, BUYER, ARBITER = dev_accounts(count=7)
VIN = "1HGCM82633A004352"
EUR = 10**6
PREMIUM, FINE, LATE_FEE = 480 * EUR, 80 * EUR, 20 * EUR
#: The problem type of each status these routes answer with.
CODES = {
    402: "insufficient-funds",
    403: "not-authorized",
    404: "not-found",
    409: "conflict",
    422: "validation-failed",
}


@pytest.fixture
def chain(embedded, tmp_path, database):
    """AUTHORITY and INSURER registered; DRIVER's car titled and fined, an offer on it;
    DRIVER and BUYER hold 1,000.00 EUR and are m1's, their keys held."""
    chain = Chain(embedded.url, state_dir=tmp_path / "state")
    platform = deploy_platform(chain, OWNER, treasury=TREASURY.address)
    registry = chain.contract("merchant_registry", platform.registry)
    for merchant, category in ((AUTHORITY, "authority"), (INSURER, "insurer")):
        register = registry.functions.registerMerchant(
            merchant.address, CATEGORIES.index(category), merchant.address, 0
        )
        chain.transact(OWNER, register)
    token = chain.contract("currency_token", platform.tokens["EUR"])
    for holder in (DRIVER, BUYER):
        chain.transact(OWNER, token.functions.mint(holder.address, 1_000 * EUR))
    vehicles = chain.contract("vehicle_registry", platform.vehicles)
    chain.transact(OWNER, vehicles.functions.setRegistrar(OWNER.address, True))
    chain.transact(OWNER, vehicles.functions.mintTitle(DRIVER.address, VIN))
    title = vehicles.functions.titleOf(VIN).call()
    now = chain.w3.eth.get_block("latest")["timestamp"]
    fines = chain.contract("traffic_fines", platform.fines)
    issue = fines.functions.issueFine(title, token.address, FINE, LATE_FEE, now + 86_400, 7)
    chain.transact(AUTHORITY, issue)
    insurance = chain.contract("insurance", platform.insurance)
    offer = insurance.functions.offerPolicy(
        title, token.address, PREMIUM, 365 * 86_400, 30 * 86_400, 5_000, now + 86_400
    )
    chain.transact(INSURER, offer)
    with database.begin() as session:
        for holder in (DRIVER, BUYER):
            participants.link(session, owner="m1", chain_id=1337, address=holder.address)
    chain.platform, chain.token, chain.title = platform, token, title
    Indexer(database, chain, platform.watched()).catch_up()
    return chain


@pytest.fixture
def clock(chain):
    return chain_clock(chain)


@pytest.fixture
def keyring():
    return Keyring([DRIVER, BUYER])


def _balance(chain, account) -> int:
    return chain.token.functions.balanceOf(account.address).call()


def _vehicle(client, headers) -> dict:
    return client.get(f"/v1/vehicles/{VIN}", headers=headers).json()


def _intents(database) -> list[tuple[str, str]]:
    with database.begin() as session:
        return [
            (i.kind, i.state)
            for i in session.scalars(sa.select(OutboxIntent).order_by(OutboxIntent.id))
        ]


def _state(client, headers, intent) -> dict:
    return client.get(f"/v1/outbox/{intent.json()['id']}", headers=headers).json()


def test_the_owner_pays_a_fine_once_through_an_approval(client, m1, database, chain, clock):
    [fine] = _vehicle(client, m1)["fines"]
    path = f"/v1/fines/{fine['fine_id']}/pay"
    before = _balance(chain, DRIVER), _balance(chain, AUTHORITY)

    paid = post(client, m1, path, {"payer": DRIVER.address}, "p1")
    assert paid.status_code == 201, paid.text
    assert (paid.json()["kind"], paid.json()["due_minor"]) == ("fine_pay", FINE)  # not late
    assert_problem(post(client, m1, path, {"payer": DRIVER.address}, "p2"), 409, "conflict")
    relay_and_index(database, chain, DRIVER, clock)

    assert _state(client, m1, paid)["state"] == "confirmed"
    assert _intents(database) == [("approval", "confirmed"), ("fine_pay", "confirmed")]
    assert (_balance(chain, DRIVER), _balance(chain, AUTHORITY)) == (
        before[0] - FINE,
        before[1] + FINE,
    )
    [fine] = _vehicle(client, m1)["fines"]
    assert (fine["status"], fine["paid"]) == ("paid", FINE)
    detail = assert_problem(
        post(client, m1, path, {"payer": DRIVER.address}, "p3"), 409, "conflict"
    )
    assert "paid" in detail["detail"]


def test_a_fine_is_paid_only_by_the_vehicles_owner_with_the_money(
    client, m1, database, chain, clock
):
    [fine] = _vehicle(client, m1)["fines"]
    path = f"/v1/fines/{fine['fine_id']}/pay"
    # BUYER is m1's and held, but does not own the car.
    assert_problem(post(client, m1, path, {"payer": BUYER.address}, "a"), 409, "conflict")
    assert_problem(
        post(client, m1, "/v1/fines/99/pay", {"payer": DRIVER.address}, "b"), 404, CODES[404]
    )
    other = bearer(make_key(database, "payments:write", owner="m2"))
    assert_problem(post(client, other, path, {"payer": DRIVER.address}, "c"), 403, CODES[403])
    # DRIVER spends all but 1 EUR elsewhere: short of the fine.
    chain.transact(DRIVER, chain.token.functions.transfer(BUYER.address, 999 * EUR))
    short = post(client, m1, path, {"payer": DRIVER.address}, "d")
    assert_problem(short, 402, "insufficient-funds")
    assert _intents(database) == []


def test_the_owner_accepts_a_policy_then_cancels_it_for_a_refund(
    client, m1, database, chain, clock
):
    [policy] = _vehicle(client, m1)["policies"]
    accept = {
        "holder": DRIVER.address,
        "max_premium_minor": PREMIUM,
        "allowance_minor": 2 * PREMIUM,
    }
    path = f"/v1/policies/{policy['policy_id']}"
    before = _balance(chain, DRIVER)

    accepted = post(client, m1, f"{path}/accept", accept, "a1")
    assert accepted.status_code == 201, accepted.text
    assert_problem(post(client, m1, f"{path}/accept", accept, "a2"), 409, "conflict")
    relay_and_index(database, chain, DRIVER, clock)
    assert _state(client, m1, accepted)["state"] == "confirmed"
    [policy] = _vehicle(client, m1)["policies"]
    assert (policy["status"], policy["holder"]) == ("active", DRIVER.address.lower())
    assert _balance(chain, DRIVER) == before - PREMIUM
    insurance = chain.contract("insurance", chain.platform.insurance)
    # What renewals may pull: the allowance given, less the first premium.
    assert chain.token.functions.allowance(DRIVER.address, insurance.address).call() == PREMIUM
    assert_problem(post(client, m1, f"{path}/accept", accept, "a3"), 409, "conflict")

    refund = insurance.functions.cancellationRefund(policy["policy_id"]).call()
    cancelled = post(client, m1, f"{path}/cancel", {"holder": DRIVER.address}, "c1")
    assert cancelled.status_code == 201, cancelled.text
    relay_and_index(database, chain, DRIVER, clock)
    assert _state(client, m1, cancelled)["state"] == "confirmed"
    [policy] = _vehicle(client, m1)["policies"]
    assert policy["status"] == "cancelled"
    assert 0 < refund <= PREMIUM // 2  # the insurer's rule: half the unearned premium
    assert _balance(chain, DRIVER) == before - PREMIUM + refund
    again = post(client, m1, f"{path}/cancel", {"holder": DRIVER.address}, "c2")
    assert_problem(again, 409, "conflict")


def test_bad_acceptances_and_cancellations_are_refused_and_nothing_is_written(
    client, m1, database, chain, clock
):
    [policy] = _vehicle(client, m1)["policies"]
    path = f"/v1/policies/{policy['policy_id']}"
    good = {"holder": DRIVER.address, "max_premium_minor": PREMIUM, "allowance_minor": PREMIUM}
    for change, status in (
        ({"max_premium_minor": PREMIUM - 1}, 422),  # below the premium
        ({"allowance_minor": PREMIUM - 1}, 422),  # does not cover the first premium
        ({"holder": BUYER.address}, 409),  # not the vehicle's owner
        ({"holder": AUTHORITY.address}, 403),  # not m1's
    ):
        response = post(client, m1, f"{path}/accept", good | change, str(change))
        assert_problem(response, status, CODES[status])
    assert_problem(post(client, m1, "/v1/policies/99/accept", good, "x"), 404, CODES[404])
    cancel = {"holder": DRIVER.address}
    assert_problem(post(client, m1, f"{path}/cancel", cancel, "y"), 409, CODES[409])  # not started
    assert _intents(database) == []


def _escrow_body(chain, clock, **changes) -> dict:
    body = {
        "seller": DRIVER.address,
        "vin": VIN,
        "buyer": BUYER.address,
        "token": chain.token.address,
        "price_minor": 300 * EUR,
        "deadline": int(clock.now.timestamp()) + 7 * 86_400,
        "arbiter": ARBITER.address,
    }
    return body | changes


def _opened_escrow(client, m1, database, chain, clock, key: str) -> int:
    opened = post(client, m1, "/v1/escrows", _escrow_body(chain, clock), key)
    assert opened.status_code == 201, opened.text
    relay_and_index(database, chain, DRIVER, clock)
    assert _state(client, m1, opened)["state"] == "confirmed"
    return chain.contract("vehicle_escrow", chain.platform.escrow).functions.escrowCount().call()


def test_a_car_is_sold_by_escrow_step_by_step(client, m1, database, chain, clock):
    escrow_id = _opened_escrow(client, m1, database, chain, clock, "open")
    escrow = client.get(f"/v1/escrows/{escrow_id}", headers=m1).json()
    assert (escrow["state"], escrow["funded"], escrow["deposited"]) == ("open", False, False)
    assert escrow["price"] == 300 * EUR
    path = f"/v1/escrows/{escrow_id}"
    assert_problem(post(client, m1, f"{path}/settle", {"party": "buyer"}, "s0"), 409, CODES[409])
    seller_before, buyer_before = _balance(chain, DRIVER), _balance(chain, BUYER)

    funded = post(client, m1, f"{path}/fund", {}, "fund")
    assert funded.status_code == 201, funded.text
    assert_problem(post(client, m1, f"{path}/fund", {}, "fund2"), 409, "conflict")
    relay_and_index(database, chain, BUYER, clock)
    deposited = post(client, m1, f"{path}/title", {}, "title")
    assert deposited.status_code == 201, deposited.text
    relay_and_index(database, chain, DRIVER, clock)
    escrow = client.get(path, headers=m1).json()
    assert (escrow["funded"], escrow["deposited"]) == (True, True)
    assert _vehicle(client, m1)["owner"] == chain.platform.escrow.lower()

    settled = post(client, m1, f"{path}/settle", {"party": "buyer"}, "settle")
    assert settled.status_code == 201, settled.text
    relay_and_index(database, chain, BUYER, clock)

    assert client.get(path, headers=m1).json()["state"] == "settled"
    assert _vehicle(client, m1)["owner"] == BUYER.address.lower()
    fee = 300 * EUR * escrow["fee_bps"] // 10_000
    assert _balance(chain, BUYER) == buyer_before - 300 * EUR
    assert _balance(chain, DRIVER) == seller_before + 300 * EUR - fee
    kinds = [kind for kind, state in _intents(database) if state == "confirmed"]
    assert kinds == [
        "escrow_open",
        "approval",
        "escrow_fund",
        "approval",
        "escrow_deposit",
        "escrow_settle",
    ]
    assert_problem(post(client, m1, f"{path}/settle", {"party": "buyer"}, "again"), 409, CODES[409])


def test_the_seller_calls_an_unfunded_escrow_off(client, m1, database, chain, clock):
    escrow_id = _opened_escrow(client, m1, database, chain, clock, "open")
    path = f"/v1/escrows/{escrow_id}"
    cancelled = post(client, m1, f"{path}/cancel", {"party": "seller"}, "cancel")
    assert cancelled.status_code == 201, cancelled.text
    relay_and_index(database, chain, DRIVER, clock)
    assert client.get(path, headers=m1).json()["state"] == "unwound"
    assert _vehicle(client, m1)["owner"] == DRIVER.address.lower()
    assert_problem(post(client, m1, f"{path}/fund", {}, "late"), 409, "conflict")


def test_bad_escrows_are_refused_and_nothing_is_written(client, m1, database, chain, clock):
    for change, status in (
        ({"seller": BUYER.address, "buyer": DRIVER.address}, 409),  # does not own the car
        ({"seller": ARBITER.address}, 403),  # not m1's
        ({"buyer": DRIVER.address}, 422),  # the seller
        ({"arbiter": BUYER.address}, 422),  # a party
        ({"price_minor": 0}, 422),
        ({"deadline": int(clock.now.timestamp()) - 1}, 422),
        ({"token": chain.platform.checkout}, 422),  # not money
        ({"vin": "WVWZZZ1JZXW000001"}, 404),  # never titled
    ):
        response = post(
            client, m1, "/v1/escrows", _escrow_body(chain, clock, **change), str(change)
        )
        assert_problem(response, status, CODES[status])
    assert_problem(post(client, m1, "/v1/escrows/5/fund", {}, "x"), 404, CODES[404])
    assert client.get("/v1/escrows/5", headers=m1).status_code == 404
    assert _intents(database) == []
