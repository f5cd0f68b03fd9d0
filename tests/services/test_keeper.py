"""Tests of carpay/services/keeper.py: policies renewed when their term ends and lapsed when
their grace period is over, once per term, by the platform, on both nodes and databases."""

from __future__ import annotations

import sqlalchemy as sa

from carpay.chain import Chain, contract
from carpay.chain.node.node import dev_accounts
from carpay.ledger import Indexer, Watched, queries
from carpay.ledger.models import OutboxIntent
from carpay.services.keeper import PolicyKeeper
from carpay.services.outbox import Outbox
from carpay.services.relayer import Relayer
from tests.contracts.checkout_fixtures import advance_past, latest_timestamp
from tests.contracts.insurance_fixtures import ACTIVE, LAPSED, PREMIUM, deploy_insurance
from tests.contracts.vehicle_fixtures import ALICE, BOB, STRANGER, VINS

ACCOUNTS = dev_accounts(count=10)
KEEPER = ACCOUNTS[STRANGER]  # the relayer's key: it pays the gas


def _world(database, node_url, tmp_path):
    chain = Chain(node_url, state_dir=tmp_path)
    w = deploy_insurance(chain, ACCOUNTS)
    watched = [
        Watched(w.vehicles.registry.address, "vehicle_registry", contract("vehicle_registry").abi),
        Watched(w.insurance.address, "insurance", contract("insurance").abi),
    ]
    indexer = Indexer(database, chain, watched)
    keeper = PolicyKeeper(
        Outbox(sender=KEEPER.address, chain_id=chain.chain_id), w.insurance.address
    )
    return chain, w, indexer, keeper


def _keep(database, chain, indexer, keeper) -> list[tuple[str, int]]:
    """Index, one keeper pass at the head's time, relay it all; the intents written."""
    indexer.catch_up()
    with database.begin() as session:
        written = [
            (i.kind, i.details["policy_id"])
            for i in keeper.run_once(session, latest_timestamp(chain))
        ]
    relayer = Relayer(database, chain, KEEPER)
    while relayer.run_once():
        pass
    return written


def test_a_term_that_ends_is_renewed_once_and_an_unpaid_one_lapses(database, node_url, tmp_path):
    chain, w, indexer, keeper = _world(database, node_url, tmp_path)
    alices = w.vehicles.mint(VINS[0], ALICE)
    bobs = w.vehicles.mint(VINS[1], BOB)
    renewing = w.offer(alices, term=30, grace=30)
    w.accept(renewing)
    lapsing = w.offer(bobs, term=20, grace=20)
    w.accept(lapsing, holder=BOB)
    # Bob takes back his allowance: his renewal cannot pull the premium.
    chain.transact(w[BOB], w.token.functions.approve(w.insurance.address, 0))
    long_term = w.offer(alices, term=3600)
    w.accept(long_term)
    first_term_end = w.f.paidThrough(renewing).call()

    assert _keep(database, chain, indexer, keeper) == []  # nothing is due yet
    advance_past(chain, first_term_end, w[STRANGER])  # Bob's term ended first, in its grace
    alice_before = w.balance(w[ALICE])
    assert _keep(database, chain, indexer, keeper) == [
        ("policy_renew", renewing),
        ("policy_renew", lapsing),
    ]
    renewed = w.policy(renewing)
    assert (renewed["status"], renewed["paid_through"]) == (ACTIVE, first_term_end + 30)
    assert w.balance(w[ALICE]) == alice_before - PREMIUM
    with database.begin() as session:
        outcomes = dict(
            session.execute(
                sa.select(OutboxIntent.details["policy_id"].as_integer(), OutboxIntent.state)
            ).all()
        )
        assert outcomes == {renewing: "confirmed", lapsing: "failed"}
        failed = session.scalars(
            sa.select(OutboxIntent.error).where(OutboxIntent.state == "failed")
        ).one()
        assert "allowance" in failed or "transfer" in failed, failed

    # Another pass in the same terms writes nothing: each term is renewed (or tried) once.
    assert _keep(database, chain, indexer, keeper) == []
    assert w.policy(lapsing)["status"] == ACTIVE  # still in its grace period

    advance_past(chain, w.f.paidThrough(lapsing).call() + 20, w[STRANGER])
    assert _keep(database, chain, indexer, keeper) == [("policy_lapse", lapsing)]
    assert w.policy(lapsing)["status"] == LAPSED
    assert w.policy(long_term)["status"] == ACTIVE
    indexer.catch_up()
    with database.begin() as session:
        active = {
            p["policy_id"] for p in queries.policies(session, chain.chain_id, status="active")
        }
        lapsed = {
            p["policy_id"] for p in queries.policies(session, chain.chain_id, status="lapsed")
        }
    assert lapsing in lapsed and lapsing not in active
    assert long_term in active
