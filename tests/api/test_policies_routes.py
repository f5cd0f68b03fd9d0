"""Tests of carpay/api/routes/policies.py and carpay/services/policies.py: an insurer offers
policies and pays claims from its own key, for its API owner only, checked first."""

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

OWNER, TREASURY, INSURER, SHOP, DRIVER = dev_accounts(count=5)
VIN = "1HGCM82633A004352"
PREMIUM = 480_000_000


@pytest.fixture
def chain(embedded, tmp_path, database):
    """INSURER and SHOP (a repair shop) registered and m1's, keys held; DRIVER's car titled;
    the insurer and the driver hold cEUR and approve insurance."""
    chain = Chain(embedded.url, state_dir=tmp_path / "state")
    platform = deploy_platform(chain, OWNER, treasury=TREASURY.address)
    registry = chain.contract("merchant_registry", platform.registry)
    token = chain.contract("currency_token", platform.tokens["EUR"])
    for merchant, category in ((INSURER, "insurer"), (SHOP, "repair")):
        register = registry.functions.registerMerchant(
            merchant.address, CATEGORIES.index(category), merchant.address, 0
        )
        chain.transact(OWNER, register)
    for holder in (INSURER, DRIVER):
        chain.transact(OWNER, token.functions.mint(holder.address, 10**10))
        chain.transact(holder, token.functions.approve(platform.insurance, 2**256 - 1))
    vehicles = chain.contract("vehicle_registry", platform.vehicles)
    chain.transact(OWNER, vehicles.functions.setRegistrar(OWNER.address, True))
    chain.transact(OWNER, vehicles.functions.mintTitle(DRIVER.address, VIN))
    with database.begin() as session:
        for merchant in (INSURER, SHOP):
            participants.link(session, owner="m1", chain_id=1337, address=merchant.address)
    chain.platform, chain.token = platform, token
    Indexer(database, chain, platform.watched()).catch_up()
    return chain


@pytest.fixture
def clock(chain):
    return chain_clock(chain)


@pytest.fixture
def keyring():
    return Keyring([INSURER, SHOP])


def _offer(chain, clock, **changes) -> dict:
    body = {
        "insurer": INSURER.address,
        "vin": VIN,
        "token": chain.platform.tokens["EUR"],
        "premium_minor": PREMIUM,
        "term": 365 * 86_400,
        "grace": 30 * 86_400,
        "refund_bps": 10_000,
        "expiry": int(clock.now.timestamp()) + 86_400,
    }
    return body | changes


def _policies(client, headers) -> list[dict]:
    return client.get(f"/v1/vehicles/{VIN}", headers=headers).json()["policies"]


def test_an_insurer_offers_the_owner_accepts_a_claim_is_paid_once(
    client, m1, database, chain, clock
):
    offered = post(client, m1, "/v1/policies", _offer(chain, clock), "o1")
    assert offered.status_code == 201, offered.text
    relay_and_index(database, chain, INSURER, clock)
    [policy] = _policies(client, m1)
    assert (policy["status"], policy["premium"], policy["insurer"]) == (
        "offered",
        PREMIUM,
        INSURER.address.lower(),
    )
    claim = {"insurer": INSURER.address, "amount_minor": 1_000_000, "claim": "CLM-1"}
    path = f"/v1/policies/{policy['policy_id']}/claims"
    assert_problem(post(client, m1, path, claim, "c0"), 409, "conflict")  # not started

    insurance = chain.contract("insurance", chain.platform.insurance)
    chain.transact(DRIVER, insurance.functions.accept(policy["policy_id"], PREMIUM))
    Indexer(database, chain, chain.platform.watched()).catch_up()
    driver_before = chain.token.functions.balanceOf(DRIVER.address).call()
    paid = post(client, m1, path, claim, "c1")
    assert paid.status_code == 201, paid.text
    assert paid.json()["holder"] == DRIVER.address.lower()
    # The same claim again, under another key: refused while it is sent and once it is paid.
    assert_problem(post(client, m1, path, claim, "c2"), 409, "conflict")
    relay_and_index(database, chain, INSURER, clock)
    assert chain.token.functions.balanceOf(DRIVER.address).call() == driver_before + 1_000_000
    assert_problem(post(client, m1, path, claim, "c3"), 409, "conflict")
    [policy] = _policies(client, m1)
    assert (policy["status"], policy["claims_paid"]) == ("active", 1_000_000)


def test_bad_offers_and_claims_are_refused_and_nothing_is_written(
    client, m1, database, chain, clock
):
    for change, status, code in (
        ({"grace": 366 * 86_400}, 422, "validation-failed"),  # longer than the term
        ({"expiry": int(clock.now.timestamp()) - 1}, 422, "validation-failed"),
        ({"token": chain.platform.checkout}, 422, "validation-failed"),  # not money
        ({"vin": "WVWZZZ1JZXW000001"}, 404, "not-found"),  # valid, never titled
        ({"vin": "1HGCM82633A00435"}, 422, "validation-failed"),  # 16 characters
        ({"insurer": SHOP.address}, 409, "conflict"),  # not an insurer
        ({"insurer": DRIVER.address}, 403, "not-authorized"),  # nobody's merchant
    ):
        response = post(client, m1, "/v1/policies", _offer(chain, clock, **change), str(change))
        assert_problem(response, status, code)
    claim = {"insurer": INSURER.address, "amount_minor": 1, "claim": "CLM-9"}
    assert_problem(post(client, m1, "/v1/policies/77/claims", claim, "x"), 404, "not-found")
    other = bearer(make_key(database, "payments:write", owner="m2"))
    assert_problem(
        post(client, other, "/v1/policies", _offer(chain, clock), "y"), 403, "not-authorized"
    )
    with database.begin() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(OutboxIntent)) == 0
