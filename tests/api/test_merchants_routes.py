"""Tests of carpay/api/routes/merchants.py: onboarding merchants over HTTP, sent by the operator."""

from __future__ import annotations

import pytest

from carpay.accounts import participants
from carpay.chain import Chain
from carpay.chain.node.node import dev_accounts
from carpay.ledger import Indexer
from carpay.services.platform import deploy_platform
from carpay.services.relayer import Relayer
from tests.api.conftest import bearer, make_key
from tests.api.test_problems import assert_problem

OPERATOR, TREASURY, SHOP, PAYOUT, OTHER = dev_accounts(count=5)


@pytest.fixture
def chain(embedded, tmp_path):
    chain = Chain(embedded.url, state_dir=tmp_path / "state")
    chain.platform = deploy_platform(chain, OPERATOR, treasury=TREASURY.address)
    return chain


def _body(**changes) -> dict:
    body = {
        "merchant": SHOP.address,
        "owner": "acme-repairs",
        "category": "repair",
        "payout": PAYOUT.address,
        "fee_bps": 175,
    }
    return body | changes


def _post(client, headers, body, key="onboard-1"):
    return client.post("/v1/merchants", json=body, headers=headers | {"Idempotency-Key": key})


def test_an_admin_onboards_a_merchant_the_operator_registers_it(client, admin, database, chain):
    response = _post(client, admin, _body())
    assert response.status_code == 201, response.text
    onboarding = response.json()
    assert (onboarding["kind"], onboarding["state"]) == ("merchant", "pending")
    assert (onboarding["owner"], onboarding["category"], onboarding["fee_bps"]) == (
        "acme-repairs",
        "repair",
        175,
    )
    # The same request again is the same answer; nothing is sent twice.
    again = _post(client, admin, _body())
    assert again.json() == onboarding and again.headers["Idempotent-Replayed"] == "true"

    relayer = Relayer(database, chain, OPERATOR)
    while relayer.run_once():
        pass
    status = client.get(f"/v1/outbox/{onboarding['id']}", headers=admin).json()
    assert status["state"] == "confirmed", status
    registry = chain.contract("merchant_registry", chain.platform.registry)
    assert registry.functions.merchantTerms(SHOP.address).call() == [
        PAYOUT.address,
        175,
        4,
        True,
    ]
    with database.begin() as session:
        assert participants.addresses_of(session, chain.chain_id, "acme-repairs") == [SHOP.address]

    # Once indexed, the same merchant cannot be onboarded again, for anyone.
    Indexer(database, chain, chain.platform.watched()).catch_up()
    body = assert_problem(
        _post(client, admin, _body(owner="someone-else"), key="onboard-2"), 409, "conflict"
    )
    assert "registered already" in body["detail"]


def test_a_merchant_has_one_owner_and_one_onboarding_at_a_time(client, admin, database, chain):
    first = _post(client, admin, _body())
    assert first.status_code == 201
    body = assert_problem(
        _post(client, admin, _body(owner="squatter", payout=OTHER.address), key="k2"),
        409,
        "conflict",
    )
    assert "being onboarded" in body["detail"]
    # The registration fails (the operator gave up the registry before it was sent): the same
    # owner may onboard again, nobody else.
    registry = chain.contract("merchant_registry", chain.platform.registry)
    chain.transact(OPERATOR, registry.functions.renounce_ownership())
    relayer = Relayer(database, chain, OPERATOR)
    while relayer.run_once():
        pass
    failed = client.get(f"/v1/outbox/{first.json()['id']}", headers=admin).json()
    assert failed["state"] == "failed", failed
    squatter = _body(owner="squatter")
    body = assert_problem(_post(client, admin, squatter, key="k3"), 409, "conflict")
    assert "belongs to an owner" in body["detail"]
    assert _post(client, admin, _body(), key="k4").status_code == 201


def test_bad_onboardings_are_refused_and_nothing_is_written(client, admin, database):
    for bad in (
        {"category": "bakery"},
        {"fee_bps": 1_001},
        {"fee_bps": -1},
        {"merchant": "0x1234"},
        {"payout": SHOP.address.lower().replace("0x", "0X")},
        {"owner": ""},
    ):
        assert_problem(_post(client, admin, _body(**bad), key=str(bad)), 422, "validation-failed")
    mixed = SHOP.address[:-1] + ("a" if SHOP.address[-1] != "a" else "b")  # a broken checksum
    assert_problem(_post(client, admin, _body(merchant=mixed), key="m"), 422, "validation-failed")
    assert_problem(
        client.post("/v1/merchants", json=_body(), headers=admin), 400, "idempotency-key-required"
    )
    with database.begin() as session:
        assert participants.addresses_of(session, 1337, "acme-repairs") == []


def test_only_an_admin_onboards(client, database):
    writer = bearer(make_key(database, "payments:write", "transfers:write", owner="m2"))
    assert_problem(_post(client, writer, _body()), 403, "not-authorized")
    assert_problem(
        client.post("/v1/merchants", json=_body(), headers={"Idempotency-Key": "x"}),
        401,
        "unauthenticated",
    )


@pytest.mark.parametrize("chain", [None], indirect=False)
def test_without_a_node_onboarding_is_unavailable(client, admin):
    assert_problem(_post(client, admin, _body()), 503, "service-unavailable")
