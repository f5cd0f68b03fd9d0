"""Tests of GET /v1/vehicles/{vin}: a vehicle's record as the indexer saw it."""

from __future__ import annotations

import pytest

from carpay.chain import Chain
from carpay.chain.node.node import dev_accounts
from carpay.ledger import Indexer
from carpay.runtime import DevKeys
from carpay.services.platform import DEMO_VINS, deploy_platform, seed_demo
from carpay.settings import DEV_MNEMONIC
from tests.api.conftest import bearer, make_key
from tests.api.test_problems import assert_problem


@pytest.fixture
def chain(embedded, tmp_path):
    return Chain(embedded.url, state_dir=tmp_path / "state")


@pytest.fixture
def demo(chain, database):
    keys = DevKeys.from_mnemonic(DEV_MNEMONIC)
    platform = deploy_platform(chain, keys.owner, treasury=keys.treasury.address)
    holders = [a.address for a in dev_accounts(count=3)]
    seed_demo(chain, platform, keys.owner, holders=holders, merchants=keys.merchants)
    start = chain.deployment("merchant_registry").block
    Indexer(database, chain, platform.watched(), start_block=start).catch_up()
    return platform, holders, keys


def test_a_vehicle_shows_its_owner_service_and_unpaid_fine(client, demo, database):
    platform, holders, keys = demo
    reader = bearer(make_key(database, "ledger:read"))

    found = client.get(f"/v1/vehicles/{DEMO_VINS[0].lower()}", headers=reader)

    assert found.status_code == 200, found.text
    record = found.json()
    assert (record["vin"], record["owner"]) == (DEMO_VINS[0], holders[0].lower())
    assert [o["owner"] for o in record["owners"]] == [holders[0].lower()]
    assert record["lien"] is None
    assert [s["odometer"] for s in record["service"]] == [42_000]
    [fine] = record["fines"]
    assert (fine["status"], fine["amount"], fine["late_fee"]) == ("unpaid", 60 * 10**6, 20 * 10**6)
    authority = keys.merchants[7].address.lower()
    assert fine["authority"] == authority
    [policy] = record["policies"]
    assert (policy["status"], policy["premium"], policy["holder"]) == ("offered", 480 * 10**6, None)
    assert policy["insurer"] == keys.merchants[1].address.lower()


def test_unknown_and_invalid_vins(client, demo, database):
    reader = bearer(make_key(database, "ledger:read"))
    assert_problem(client.get("/v1/vehicles/1HGCM82633A004353", headers=reader), 422, "invalid-vin")
    assert_problem(client.get("/v1/vehicles/WVWZZZ1JZXW999999", headers=reader), 404, "not-found")
