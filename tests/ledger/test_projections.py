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
from carpay.services.platform import deploy_platform

INVOICE_TYPES = {
    "Invoice": [
        {"name": "merchant", "type": "address"},
        {"name": "amount", "type": "uint256"},
        {"name": "token", "type": "address"},
        {"name": "invoiceId", "type": "bytes32"},
        {"name": "expiry", "type": "uint256"},
        {"name": "payer", "type": "address"},
    ]
}
ZERO = "0x" + "00" * 20


@pytest.fixture(scope="module")
def people():
    return dev_accounts(count=4)  # owner, treasury, merchant, payer


def _rows(database, table) -> list:
    with database.begin() as session:
        return list(session.scalars(sa.select(table).order_by(table.id)))


def test_payments_refunds_holds_and_merchants(database, node_url, tmp_path, people):
    owner, treasury, merchant, payer = people
    chain = Chain(node_url, state_dir=tmp_path)
    platform = deploy_platform(chain, owner, treasury=treasury.address)
    registry = chain.contract("merchant_registry", platform.registry)
    checkout = chain.contract("checkout", platform.checkout)
    token = chain.contract("currency_token", platform.tokens["EUR"])
    chain.transact(
        owner, registry.functions.registerMerchant(merchant.address, 4, merchant.address, 150)
    )
    chain.transact(owner, token.functions.mint(payer.address, 1_000_000))
    chain.transact(payer, token.functions.approve(checkout.address, 2**256 - 1))
    chain.transact(merchant, token.functions.approve(checkout.address, 2**256 - 1))

    expiry = chain.w3.eth.get_block("latest")["timestamp"] + 3600
    invoice = (merchant.address, 200_000, token.address, b"\x07" * 32, expiry, ZERO)
    domain = {
        "name": "carpay checkout",
        "version": "1",
        "chainId": chain.chain_id,
        "verifyingContract": checkout.address,
    }
    message = dict(
        zip(("merchant", "amount", "token", "invoiceId", "expiry", "payer"), invoice, strict=True)
    )
    signature = merchant.sign_typed_data(domain, INVOICE_TYPES, message).signature
    chain.transact(payer, checkout.functions.payInvoice(invoice, bytes(signature)))
    chain.transact(merchant, checkout.functions.refund(invoice, payer.address, 0, 50_000))
    hold = (payer.address, merchant.address, token.address, 100_000, expiry, b"\x01" * 32)
    chain.transact(payer, checkout.functions.placeHold(hold))
    chain.transact(merchant, checkout.functions.capture(hold, 30_000, False))
    chain.transact(merchant, checkout.functions.capture(hold, 20_000, True))
    chain.transact(owner, registry.functions.setFeeTier(merchant.address, 90))

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
