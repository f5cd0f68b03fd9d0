"""Tests of carpay/api/routes/vehicles.py, carpay/services/vehicles.py and POST
/v1/participants: an admin links an OEM's registrar to its owner, whose key titles vehicles
from the registrar's key, each VIN once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from carpay.accounts import Keyring
from carpay.chain import Chain
from carpay.chain.node.node import dev_accounts
from carpay.ledger import Indexer
from carpay.ledger.models import OutboxIntent
from carpay.services.platform import deploy_platform
from tests.api.conftest import bearer, chain_clock, make_key, post, relay_and_index
from tests.api.test_problems import assert_problem

OWNER, TREASURY, OEM, IMPOSTOR, DRIVER = dev_accounts(count=5)
VIN, OTHER_VIN = "1HGCM82633A004352", "WVWZZZ1JZXW000001"


@pytest.fixture
def chain(embedded, tmp_path, database):
    """OEM a registrar of titles; IMPOSTOR not (both keys held)."""
    chain = Chain(embedded.url, state_dir=tmp_path / "state")
    chain.platform = deploy_platform(chain, OWNER, treasury=TREASURY.address)
    vehicles = chain.contract("vehicle_registry", chain.platform.vehicles)
    chain.transact(OWNER, vehicles.functions.setRegistrar(OEM.address, True))
    Indexer(database, chain, chain.platform.watched()).catch_up()
    return chain


@pytest.fixture
def clock(chain):
    return chain_clock(chain)


@pytest.fixture
def keyring():
    return Keyring([OEM, IMPOSTOR])


@pytest.fixture
def oem(client, admin, database):
    """The OEM's API key, its registrar and IMPOSTOR linked to it by an admin."""
    for address in (OEM.address, IMPOSTOR.address):
        body = {"address": address, "owner": "oem"}
        linked = post(client, admin, "/v1/participants", body, f"link-{address}")
        assert linked.status_code == 201, linked.text
        assert linked.json() == body | {"chain_id": 1337}
    return bearer(
        make_key(database, "vehicles:write", "transfers:read", "ledger:read", owner="oem")
    )


def test_a_registrar_titles_a_vehicle_once(client, oem, database, chain, clock):
    body = {"registrar": OEM.address, "vin": VIN, "holder": DRIVER.address}
    titled = post(client, oem, "/v1/vehicles", body, "t1")
    assert titled.status_code == 201, titled.text
    assert (titled.json()["kind"], titled.json()["vin"]) == ("title", VIN)
    assert_problem(post(client, oem, "/v1/vehicles", body, "t2"), 409, "conflict")  # in flight
    relay_and_index(database, chain, OEM, clock)
    status = client.get(f"/v1/outbox/{titled.json()['id']}", headers=oem).json()
    assert status["state"] == "confirmed", status["error"]
    record = client.get(f"/v1/vehicles/{VIN}", headers=oem).json()
    assert record["owner"] == DRIVER.address.lower()
    detail = assert_problem(post(client, oem, "/v1/vehicles", body, "t3"), 409, "conflict")
    assert "titled already" in detail["detail"]


def test_bad_registrations_are_refused_and_nothing_is_written(client, oem, admin, database, chain):
    def body(**changes):
        return {"registrar": OEM.address, "vin": OTHER_VIN, "holder": DRIVER.address} | changes

    for change, status, code in (
        ({"vin": "1HGCM82633A004353"}, 422, "invalid-vin"),
        ({"holder": "0x" + "00" * 20}, 422, "validation-failed"),
        ({"registrar": IMPOSTOR.address}, 409, "conflict"),  # the owner's, not a registrar
        ({"registrar": DRIVER.address}, 403, "not-authorized"),  # nobody's
    ):
        assert_problem(post(client, oem, "/v1/vehicles", body(**change), str(change)), status, code)
    payments_only = bearer(make_key(database, "payments:write", owner="oem"))
    assert_problem(post(client, payments_only, "/v1/vehicles", body(), "x"), 403, "not-authorized")
    # An address has one owner; only admins link.
    taken = {"address": OEM.address, "owner": "squatter"}
    assert_problem(post(client, admin, "/v1/participants", taken, "l2"), 409, "conflict")
    assert_problem(post(client, oem, "/v1/participants", taken, "l3"), 403, "not-authorized")
    with database.begin() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(OutboxIntent)) == 0
