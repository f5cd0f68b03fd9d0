"""Webhooks from the chain: what happens to a merchant on the ledger, however it was sent.

:class:`ChainNotifier` is a projection of the indexer (see
:meth:`carpay.ledger.Indexer.add_projection`): in the very transaction that indexes a round,
it publishes a webhook event for each event of :data:`CHAIN_EVENTS` to the API owner of the
merchant it concerns (:class:`carpay.services.merchants.Merchants` links them). So an event
is published exactly when its log is indexed: never lost, and never twice, since its id is
made of the chain, the transaction and the log index (a reindex publishes nothing again).

On a network with reorgs the indexer waits its confirmations first; an event published for
a block that a deeper reorg later removes stays published.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from carpay.accounts.participants import owner_of
from carpay.ledger.tables import LedgerEvent
from carpay.services.webhooks import Webhooks

__all__ = ["CHAIN_EVENTS", "ChainNotifier"]

#: ``(contract, event)`` -> ``(webhook type, the argument naming the merchant)``. Insurance
#: events other than offers and claims name no insurer: ``policy`` means the policy's.
CHAIN_EVENTS: Mapping[tuple[str, str], tuple[str, str]] = {
    ("checkout", "InvoicePaid"): ("payment.received", "merchant"),
    ("checkout", "Refunded"): ("refund.succeeded", "merchant"),
    ("checkout", "HoldPlaced"): ("hold.placed", "merchant"),
    ("checkout", "HoldCaptured"): ("hold.captured", "merchant"),
    ("checkout", "HoldVoided"): ("hold.released", "merchant"),
    ("checkout", "HoldReclaimed"): ("hold.released", "merchant"),
    ("traffic_fines", "FineIssued"): ("fine.issued", "authority"),
    ("traffic_fines", "FinePaid"): ("fine.paid", "authority"),
    ("traffic_fines", "FineWaived"): ("fine.waived", "authority"),
    ("insurance", "PolicyAccepted"): ("policy.accepted", "policy"),
    ("insurance", "PolicyRenewed"): ("policy.renewed", "policy"),
    ("insurance", "PolicyLapsed"): ("policy.lapsed", "policy"),
    ("insurance", "PolicyCancelled"): ("policy.cancelled", "policy"),
    ("insurance", "ClaimPaid"): ("claim.paid", "insurer"),
}


def event_id(chain_id: int, tx_hash: str, log_index: int) -> str:
    """The webhook event id of a log: the same however often it is indexed."""
    return f"evt_{chain_id}_{tx_hash.removeprefix('0x')}_{log_index}"


class ChainNotifier:
    """Publishes :data:`CHAIN_EVENTS` through ``webhooks``; call it as a projection."""

    def __init__(self, webhooks: Webhooks) -> None:
        self.webhooks = webhooks

    def __call__(self, session: Session, chain_id: int, events: list[dict[str, Any]]) -> None:
        owners: dict[str, str | None] = {}
        insurers: dict[str, str | None] = {}  # policy id -> insurer, from this round's offers
        for event in events:
            args = event["args"]
            if (event["contract"], event["event"]) == ("insurance", "PolicyOffered"):
                insurers[args["policy_id"]] = args["insurer"]
            found = CHAIN_EVENTS.get((event["contract"], event["event"]))
            if found is None:
                continue
            kind, who = found
            if who == "policy":
                policy = args["policy_id"]
                if policy not in insurers:
                    insurers[policy] = _insurer(session, chain_id, policy)
                merchant = insurers[policy]
            else:
                merchant = args[who]
            if merchant is None:
                continue
            if merchant not in owners:
                owners[merchant] = owner_of(session, chain_id, merchant)
            owner = owners[merchant]
            if owner is None:
                continue  # a merchant no API owner speaks for
            self.webhooks.record(
                session,
                event_id=event_id(chain_id, event["tx_hash"], event["log_index"]),
                type=kind,
                owner=owner,
                data={
                    "chain_id": chain_id,
                    "merchant": merchant,
                    "contract": event["contract"],
                    "event": event["event"],
                    "block_number": event["block_number"],
                    "tx_hash": event["tx_hash"],
                    "log_index": event["log_index"],
                    "timestamp": event["timestamp"],
                    **args,
                },
            )


def _insurer(session: Session, chain_id: int, policy_id: str) -> str | None:
    """The insurer that offered policy ``policy_id``, from the indexed offers."""
    offers = session.scalars(
        sa.select(LedgerEvent.args).where(
            LedgerEvent.chain_id == chain_id,
            LedgerEvent.contract == "insurance",
            LedgerEvent.event == "PolicyOffered",
            LedgerEvent.args["policy_id"].as_string() == policy_id,
        )
    ).first()
    return None if offers is None else offers["insurer"]
