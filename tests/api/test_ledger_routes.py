"""Tests of carpay/api/routes/ledger.py: balances, histories, statements and the explorer."""

from __future__ import annotations

import pytest

from carpay.chain import Chain
from carpay.chain.node.node import dev_accounts
from carpay.ledger import Indexer
from carpay.testing.scenarios import checkout_scenario
from tests.api.conftest import bearer, make_key
from tests.api.test_problems import assert_problem


@pytest.fixture
def chain(embedded, tmp_path):
    return Chain(embedded.url, state_dir=tmp_path / "state")


@pytest.fixture
def world(chain, database):
    owner, treasury, merchant, payer = dev_accounts(count=4)
    scenario = checkout_scenario(chain, owner, treasury, merchant, payer)
    start = chain.deployment("merchant_registry").block
    Indexer(database, chain, scenario.platform.watched(), start_block=start).catch_up()
    return scenario, merchant, payer, treasury


@pytest.fixture
def reader(database):
    return bearer(make_key(database, "ledger:read"))


def test_balances_and_history_of_an_account(client, world, reader):
    scenario, merchant, payer, _ = world
    token = scenario.token

    balances = client.get(f"/v1/accounts/{payer.address}/balances", headers=reader)
    assert balances.status_code == 200
    assert balances.json() == [
        {"token": token.address.lower(), "balance": token.functions.balanceOf(payer.address).call()}
    ]

    first = client.get(f"/v1/accounts/{payer.address}/transfers?limit=3", headers=reader).json()
    assert first["has_more"] is True and len(first["data"]) == 3
    rest = client.get(
        f"/v1/accounts/{payer.address}/transfers?after={first['next_after']}", headers=reader
    ).json()
    everything = first["data"] + rest["data"]
    assert rest["has_more"] is False
    assert [t["id"] for t in everything] == sorted((t["id"] for t in everything), reverse=True)
    # the mint, invoice net and fee, the refund, the hold, two captures' return
    assert everything[-1]["kind"] == "mint" and everything[-1]["value"] == 1_000_000
    received = sum(t["value"] for t in everything if t["to_address"] == payer.address.lower())
    sent = sum(t["value"] for t in everything if t["from_address"] == payer.address.lower())
    assert received - sent == token.functions.balanceOf(payer.address).call()


def test_merchant_payments_settlement_and_hold(client, world, reader):
    scenario, merchant, _, _ = world
    payments = client.get(f"/v1/merchants/{merchant.address}/payments", headers=reader).json()
    assert [(p["kind"], p["gross"]) for p in payments["data"]] == [
        ("capture", 20_000),
        ("capture", 30_000),
        ("invoice", 200_000),
    ]
    settlement = client.get(f"/v1/merchants/{merchant.address}/settlement", headers=reader)
    assert settlement.json() == [
        {
            "token": scenario.token.address.lower(),
            "payments": 3,
            "gross": 250_000,
            "fee": 3_750,
            "net": 246_250,
            "refunded": 50_000,
        }
    ]
    future = payments["data"][0]["timestamp"] + 1
    empty = client.get(
        f"/v1/merchants/{merchant.address}/settlement?since={future}", headers=reader
    )
    assert empty.json() == []

    hold = client.get(f"/v1/holds/0x{scenario.hold_id.hex()}", headers=reader).json()
    assert (hold["open"], hold["remaining"]) == (False, 0)
    assert [m["kind"] for m in hold["movements"]] == ["placed", "captured", "captured"]

    found = client.get(f"/v1/merchants/{merchant.address}", headers=reader).json()
    assert (found["category"], found["fee_bps"], found["active"]) == (4, 90, True)
    listed = client.get("/v1/merchants?category=4", headers=reader).json()
    assert [m["merchant"] for m in listed] == [merchant.address.lower()]


def test_explorer_blocks_and_transactions(client, world, reader, chain):
    blocks = client.get("/v1/explorer/blocks?limit=2", headers=reader).json()
    assert [b["number"] for b in blocks] == [chain.block_number(), chain.block_number() - 1]
    block = client.get(f"/v1/explorer/blocks/{blocks[0]['number']}", headers=reader).json()
    assert block["hash"] == blocks[0]["hash"] and len(block["transactions"]) >= 1
    tx = client.get(f"/v1/explorer/transactions/{block['transactions'][0]}", headers=reader).json()
    assert tx["block_number"] == block["number"]
    assert [e["event"] for e in tx["events"]] == ["FeeTierChanged"]
    assert tx["events"][0]["args"]["fee_bps"] == "90"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/merchants/0x" + "ab" * 20, 404, "not-found"),
        ("/v1/holds/0x" + "ab" * 32, 404, "not-found"),
        ("/v1/explorer/blocks/999999999", 404, "not-found"),
        ("/v1/explorer/transactions/0x" + "cd" * 32, 404, "not-found"),
        ("/v1/accounts/not-an-address/balances", 422, "validation-failed"),
        ("/v1/merchants?category=9", 422, "validation-failed"),
    ],
)
def test_missing_and_malformed_lookups_are_problems(client, reader, path, status, code):
    assert_problem(client.get(path, headers=reader), status, code)


def test_reading_the_ledger_needs_the_scope(client, database):
    other = bearer(make_key(database, "transfers:read"))
    assert_problem(client.get("/v1/merchants", headers=other), 403, "not-authorized")
    assert_problem(client.get("/v1/merchants"), 401, "unauthenticated")
