"""Tests of carpay/api/routes/fines.py and carpay/services/fines.py: an authority issues and
waives fines from its own key, for its API owner only, checked against the ledger first."""

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

OWNER, TREASURY, AUTHORITY, SHOP, DRIVER = dev_accounts(count=5)
VIN = "1HGCM82633A004352"


@pytest.fixture
def chain(embedded, tmp_path, database):
    """AUTHORITY and SHOP (a repair shop) registered and m1's, keys held; DRIVER's car titled."""
    chain = Chain(embedded.url, state_dir=tmp_path / "state")
    platform = deploy_platform(chain, OWNER, treasury=TREASURY.address)
    registry = chain.contract("merchant_registry", platform.registry)
    for merchant, category in ((AUTHORITY, "authority"), (SHOP, "repair")):
        register = registry.functions.registerMerchant(
            merchant.address, CATEGORIES.index(category), merchant.address, 0
        )
        chain.transact(OWNER, register)
    vehicles = chain.contract("vehicle_registry", platform.vehicles)
    chain.transact(OWNER, vehicles.functions.setRegistrar(OWNER.address, True))
    chain.transact(OWNER, vehicles.functions.mintTitle(DRIVER.address, VIN))
    with database.begin() as session:
        for merchant in (AUTHORITY, SHOP):
            participants.link(session, owner="m1", chain_id=1337, address=merchant.address)
    chain.platform = platform
    Indexer(database, chain, platform.watched()).catch_up()
    return chain


@pytest.fixture
def clock(chain):
    return chain_clock(chain)


@pytest.fixture
def keyring():
    return Keyring([AUTHORITY, SHOP])


def _fine(chain, clock, **changes) -> dict:
    body = {
        "authority": AUTHORITY.address,
        "vin": VIN,
        "token": chain.platform.tokens["EUR"],
        "amount_minor": 80_000_000,
        "late_fee_minor": 20_000_000,
        "due": int(clock.now.timestamp()) + 14 * 86_400,
        "reason": 42,
    }
    return body | changes


def test_an_authority_fines_a_vehicle_then_waives_it(client, m1, database, chain, clock):
    issued = post(client, m1, "/v1/fines", _fine(chain, clock), "f1")
    assert issued.status_code == 201, issued.text
    assert (issued.json()["kind"], issued.json()["authority"]) == ("fine_issue", AUTHORITY.address)
    relay_and_index(database, chain, AUTHORITY, clock)
    status = client.get(f"/v1/outbox/{issued.json()['id']}", headers=m1).json()
    assert status["state"] == "confirmed", status["error"]
    [fine] = client.get(f"/v1/vehicles/{VIN}", headers=m1).json()["fines"]
    assert (fine["amount"], fine["late_fee"], fine["status"]) == (80_000_000, 20_000_000, "unpaid")

    waived = post(
        client, m1, f"/v1/fines/{fine['fine_id']}/waive", {"authority": AUTHORITY.address}, "w1"
    )
    assert waived.status_code == 201, waived.text
    # Asked again (another key) while it is being sent: refused, not sent twice.
    again = {"authority": AUTHORITY.address}
    assert_problem(
        post(client, m1, f"/v1/fines/{fine['fine_id']}/waive", again, "w2"), 409, "conflict"
    )
    relay_and_index(database, chain, AUTHORITY, clock)
    [fine] = client.get(f"/v1/vehicles/{VIN}", headers=m1).json()["fines"]
    assert fine["status"] == "waived"
    detail = assert_problem(
        post(client, m1, f"/v1/fines/{fine['fine_id']}/waive", again, "w3"), 409, "conflict"
    )
    assert "waived" in detail["detail"]


def test_bad_fines_are_refused_and_nothing_is_written(client, m1, database, chain, clock):
    for change, status, code in (
        ({"vin": "1HGCM82633A004353"}, 422, "invalid-vin"),  # a wrong check digit
        ({"vin": "WVWZZZ1JZXW000001"}, 404, "not-found"),  # valid, never titled
        ({"due": int(clock.now.timestamp()) - 1}, 422, "validation-failed"),
        ({"amount_minor": 0}, 422, "validation-failed"),
        ({"token": chain.platform.checkout}, 422, "validation-failed"),  # not money
        ({"authority": SHOP.address}, 409, "conflict"),  # not an authority
        ({"authority": DRIVER.address}, 403, "not-authorized"),  # nobody's merchant
    ):
        response = post(client, m1, "/v1/fines", _fine(chain, clock, **change), str(change))
        assert_problem(response, status, code)
    other = bearer(make_key(database, "payments:write", owner="m2"))
    assert_problem(
        post(client, other, "/v1/fines", _fine(chain, clock), "x"), 403, "not-authorized"
    )
    waive = {"authority": AUTHORITY.address}
    assert_problem(post(client, m1, "/v1/fines/999/waive", waive, "y"), 404, "not-found")
    with database.begin() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(OutboxIntent)) == 0
