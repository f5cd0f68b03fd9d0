"""Tests of carpay/services/notifications.py: what the ledger shows happened to a merchant
reaches its owner's webhooks once, as the indexer indexes it, on both nodes and databases."""

from __future__ import annotations

import sqlalchemy as sa

from carpay.accounts import participants
from carpay.chain import Chain, contract
from carpay.chain.node.node import dev_accounts
from carpay.ledger import Indexer, Watched
from carpay.ledger.models import WebhookDelivery, WebhookEvent
from carpay.services.notifications import CHAIN_EVENTS, ChainNotifier, event_id
from carpay.services.webhooks import EVENT_TYPES, Webhooks
from carpay.testing.scenarios import checkout_scenario
from tests.contracts.checkout_fixtures import advance_past
from tests.contracts.insurance_fixtures import INSURER, PREMIUM, deploy_insurance
from tests.contracts.vehicle_fixtures import ALICE, STRANGER, VINS


def _link(database, chain, owner: str, merchant: str) -> None:
    with database.begin() as session:
        participants.link(session, owner=owner, chain_id=chain.chain_id, address=merchant)


def _subscribe(database, owner: str, events=("*",)) -> int:
    with database.begin() as session:
        new = Webhooks().subscribe(session, owner=owner, url="http://127.0.0.1:9/", events=events)
        return new.subscription.id


def _events(database, owner: str | None = None) -> list[WebhookEvent]:
    with database.begin() as session:
        stmt = sa.select(WebhookEvent).order_by(WebhookEvent.seq)
        if owner is not None:
            stmt = stmt.where(WebhookEvent.owner == owner)
        found = list(session.scalars(stmt))
        session.expunge_all()
        return found


def _indexer(database, chain, watched) -> Indexer:
    indexer = Indexer(database, chain, watched)
    indexer.add_projection(ChainNotifier(Webhooks()))
    return indexer


def test_every_chain_event_type_can_be_subscribed_to():
    assert {kind for kind, _ in CHAIN_EVENTS.values()} <= EVENT_TYPES


def test_a_merchants_payments_refunds_and_holds_reach_its_owner_once(database, node_url, tmp_path):
    owner, treasury, merchant, payer, bystander = dev_accounts(count=5)
    chain = Chain(node_url, state_dir=tmp_path)
    _link(database, chain, "acme", merchant.address)
    _link(database, chain, "other", bystander.address)
    acme = _subscribe(database, "acme")
    holds_only = _subscribe(database, "acme", events=["hold.captured"])
    _subscribe(database, "other")
    scenario = checkout_scenario(chain, owner, treasury, merchant, payer)
    indexer = _indexer(database, chain, scenario.platform.watched())
    indexer.catch_up()

    events = _events(database)
    assert [e.type for e in events] == [
        "payment.received",
        "refund.succeeded",
        "hold.placed",
        "hold.captured",
        "hold.captured",
    ]
    assert {e.owner for e in events} == {"acme"}  # nothing for an owner of another merchant
    paid = events[0].data
    assert (paid["gross"], paid["fee"], paid["net"]) == ("200000", "3000", "197000")
    assert paid["merchant"] == merchant.address.lower()
    assert paid["payer"] == payer.address.lower()
    assert paid["invoice_id"] == "0x" + "07" * 32
    assert events[0].id == event_id(chain.chain_id, paid["tx_hash"], paid["log_index"])
    final = events[4].data
    assert (final["gross"], final["returned"], final["remaining"]) == ("20000", "50000", "0")
    with database.begin() as session:
        deliveries = sorted(
            (d.subscription_id, d.event_seq) for d in session.scalars(sa.select(WebhookDelivery))
        )
    seqs = [e.seq for e in events]
    assert deliveries == sorted(
        [(acme, s) for s in seqs] + [(holds_only, seqs[3]), (holds_only, seqs[4])]
    )

    # Indexed again from scratch, nothing is published twice.
    indexer.reindex()
    assert [(e.seq, e.id) for e in _events(database)] == [(e.seq, e.id) for e in events]


def test_a_merchant_nobody_speaks_for_is_heard_by_nobody(database, embedded, tmp_path):
    owner, treasury, merchant, payer = dev_accounts(count=4)
    chain = Chain(embedded.url, state_dir=tmp_path)
    scenario = checkout_scenario(chain, owner, treasury, merchant, payer)
    _indexer(database, chain, scenario.platform.watched()).catch_up()
    assert _events(database) == []


def test_an_insurers_policies_and_claims_reach_it_across_rounds(database, node_url, tmp_path):
    chain = Chain(node_url, state_dir=tmp_path)
    w = deploy_insurance(chain, dev_accounts(count=10))
    _link(database, chain, "insurer-co", w[INSURER].address)
    watched = [
        Watched(w.vehicles.registry.address, "vehicle_registry", contract("vehicle_registry").abi),
        Watched(w.insurance.address, "insurance", contract("insurance").abi),
    ]
    indexer = _indexer(database, chain, watched)
    title = w.vehicles.mint(VINS[0], ALICE)
    renewed = w.offer(title, term=30, grace=30)
    indexer.catch_up()  # the offer is indexed in a round of its own: its insurer is looked up
    w.accept(renewed, PREMIUM * 2)
    advance_past(chain, w.f.paidThrough(renewed).call(), w[STRANGER])
    chain.transact(w[STRANGER], w.f.renew(renewed))
    chain.transact(w[INSURER], w.f.payClaim(renewed, 70, b"\x01" * 32))
    lapsed = w.offer(title, term=1, grace=1)  # offered and ended in one round
    w.accept(lapsed)
    advance_past(chain, w.f.paidThrough(lapsed).call() + 1, w[STRANGER])
    chain.transact(w[STRANGER], w.f.lapse(lapsed))
    cancelled = w.offer(title)
    w.accept(cancelled)
    chain.transact(w[ALICE], w.f.cancel(cancelled))
    indexer.catch_up()

    events = _events(database, "insurer-co")
    assert [(e.type, e.data["policy_id"]) for e in events] == [
        ("policy.accepted", str(renewed)),
        ("policy.renewed", str(renewed)),
        ("claim.paid", str(renewed)),
        ("policy.accepted", str(lapsed)),
        ("policy.lapsed", str(lapsed)),
        ("policy.accepted", str(cancelled)),
        ("policy.cancelled", str(cancelled)),
    ]
    assert {e.data["merchant"] for e in events} == {w[INSURER].address.lower()}
    assert events[1].data["holder"] == w[ALICE].address.lower()
