"""Tests of carpay/ledger/projections.py: checkout and registry events into typed tables, and
insurance events into a vehicle's record."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from carpay.chain import Chain, contract
from carpay.chain.node.node import dev_accounts
from carpay.ledger import Indexer, Watched, queries
from carpay.ledger.projections import rebuild_state
from carpay.ledger.tables import (
    LedgerBalance,
    LedgerHoldMovement,
    LedgerMerchant,
    LedgerPayment,
    LedgerRefund,
)
from carpay.testing.scenarios import checkout_scenario
from tests.contracts.checkout_fixtures import advance_past
from tests.contracts.insurance_fixtures import INSURER, PREMIUM, deploy_insurance
from tests.contracts.vehicle_fixtures import ALICE, STRANGER, VINS


@pytest.fixture(scope="module")
def people():
    return dev_accounts(count=4)  # owner, treasury, merchant, payer


def _rows(database, table) -> list:
    with database.begin() as session:
        return list(session.scalars(sa.select(table).order_by(table.id)))


def test_payments_refunds_holds_and_merchants(database, node_url, tmp_path, people):
    owner, treasury, merchant, payer = people
    chain = Chain(node_url, state_dir=tmp_path)
    scenario = checkout_scenario(chain, owner, treasury, merchant, payer)
    platform, token = scenario.platform, scenario.token
    start = chain.deployment("merchant_registry").block
    Indexer(database, chain, platform.watched(), start_block=start).catch_up()

    lower = str.lower
    payments = _rows(database, LedgerPayment)
    assert [(p.kind, p.gross, p.fee, p.net) for p in payments] == [
        ("invoice", 200_000, 3_000, 197_000),
        ("capture", 30_000, 450, 29_550),
        ("capture", 20_000, 300, 19_700),
    ]
    assert payments[0].reference == "0x" + "07" * 32
    assert {(p.payer, p.merchant, p.token) for p in payments} == {
        (lower(payer.address), lower(merchant.address), lower(token.address))
    }
    [refund] = _rows(database, LedgerRefund)
    assert (refund.amount, refund.refunded, refund.payer) == (50_000, 50_000, lower(payer.address))
    moves = _rows(database, LedgerHoldMovement)
    assert [(m.kind, m.amount, m.remaining, m.returned) for m in moves] == [
        ("placed", 100_000, 100_000, 0),
        ("captured", 30_000, 70_000, 0),
        ("captured", 20_000, 0, 50_000),
    ]
    assert {m.token for m in moves} == {lower(token.address)}
    [row] = _rows_merchants(database)
    assert (row.merchant, row.category, row.fee_bps, row.active) == (
        lower(merchant.address),
        4,
        90,
        True,
    )
    with database.begin() as session:
        balances = dict(
            session.execute(sa.select(LedgerBalance.account, LedgerBalance.balance)).all()
        )
    for person in (payer, merchant, treasury):
        assert balances[lower(person.address)] == token.functions.balanceOf(person.address).call()

    # Rolling back above the registration block leaves the merchant as it was registered.
    registered = row.registered_block
    with database.begin() as session:
        rebuild_state(session, chain.chain_id, above=registered)
    [row] = _rows_merchants(database)
    assert (row.fee_bps, row.updated_block) == (150, registered)
    assert _rows(database, LedgerPayment) == []
    with database.begin() as session:
        balances = dict(
            session.execute(sa.select(LedgerBalance.account, LedgerBalance.balance)).all()
        )
    assert balances[lower(payer.address)] == 0  # the mint came after the registration


def _rows_merchants(database) -> list:
    with database.begin() as session:
        return list(session.scalars(sa.select(LedgerMerchant)))


def test_a_vehicles_policies_from_offer_to_end(database, node_url, tmp_path):
    chain = Chain(node_url, state_dir=tmp_path)
    w = deploy_insurance(chain, dev_accounts(count=10))
    title = w.vehicles.mint(VINS[0], ALICE)
    withdrawn = w.offer(title)
    chain.transact(w[INSURER], w.f.withdrawOffer(withdrawn))
    renewed = w.offer(title, term=30, grace=30)
    w.accept(renewed, PREMIUM * 2)
    chain.transact(w[INSURER], w.f.setPremium(renewed, PREMIUM + 1))
    advance_past(chain, w.f.paidThrough(renewed).call(), w[STRANGER])
    chain.transact(w[STRANGER], w.f.renew(renewed))
    chain.transact(w[INSURER], w.f.payClaim(renewed, 70, b"\x01" * 32))
    chain.transact(w[INSURER], w.f.payClaim(renewed, 30, b"\x02" * 32))
    lapsed = w.offer(title, term=1, grace=1)
    w.accept(lapsed)
    advance_past(chain, w.f.paidThrough(lapsed).call() + 1, w[STRANGER])
    chain.transact(w[STRANGER], w.f.lapse(lapsed))
    watched = [
        Watched(w.vehicles.registry.address, "vehicle_registry", contract("vehicle_registry").abi),
        Watched(w.insurance.address, "insurance", contract("insurance").abi),
    ]
    Indexer(database, chain, watched).catch_up()

    with database.begin() as session:
        record = queries.vehicle(session, chain.chain_id, title)
    policies = record["policies"]
    assert [(p["policy_id"], p["status"]) for p in policies] == [
        (withdrawn, "withdrawn"),
        (renewed, "active"),
        (lapsed, "lapsed"),
    ]
    assert policies[0]["holder"] is None and policies[0]["paid_through"] is None
    assert policies[1]["premium"] == PREMIUM + 1
    assert policies[1]["paid_through"] == w.f.paidThrough(renewed).call()
    assert policies[1]["claims_paid"] == 100
    assert policies[1]["holder"] == w[ALICE].address.lower()
    assert {p["insurer"] for p in policies} == {w[INSURER].address.lower()}
