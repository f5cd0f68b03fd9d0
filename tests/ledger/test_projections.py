"""Tests of carpay/ledger/projections.py: checkout and registry events into typed tables."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from carpay.chain import Chain
from carpay.chain.node.node import dev_accounts
from carpay.ledger import Indexer
from carpay.ledger.projections import rebuild_state
from carpay.ledger.tables import (
    LedgerBalance,
    LedgerHoldMovement,
    LedgerMerchant,
    LedgerPayment,
    LedgerRefund,
)
from carpay.testing.scenarios import checkout_scenario


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
