"""Tests of carpay/ledger/models.py: exact big integers, aware datetimes, constraints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, StatementError

from carpay.ledger.models import (
    ApiKey,
    OutboxIntent,
    OutboxTransaction,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)


def _intent(**kw) -> OutboxIntent:
    fields = dict(kind="transfer", owner="m1", chain_id=1337, sender="0x" + "1" * 40)
    return OutboxIntent(**(fields | kw))


def test_uint256_round_trips_exactly(database):
    big = 2**256 - 1
    with database.begin() as s:
        s.add(_intent(value=big, data=b"\x00\x01"))
    with database.begin() as s:
        intent = s.scalars(sa.select(OutboxIntent)).one()
        assert intent.value == big
        assert intent.data == b"\x00\x01"
        assert intent.state == "pending"


def test_uint256_refuses_what_does_not_fit(database):
    with pytest.raises(StatementError, match="does not fit"), database.begin() as s:
        s.add(_intent(value=2**256))


def test_datetimes_come_back_aware_in_utc(database):
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    with database.begin() as s:
        s.add(ApiKey(prefix="p", secret_hash="h", name="n", owner="o", scopes=["a"], created_at=at))
    with database.begin() as s:
        key = s.scalars(sa.select(ApiKey)).one()
        assert key.created_at == at
        assert key.created_at.tzinfo == UTC
        assert key.scopes == ["a"]


def test_naive_datetimes_are_refused(database):
    with pytest.raises(StatementError, match="naive"), database.begin() as s:
        s.add(
            ApiKey(
                prefix="p",
                secret_hash="h",
                name="n",
                owner="o",
                scopes=[],
                created_at=datetime(2026, 1, 1),
            )
        )


def test_outbox_reference_is_unique_per_owner(database):
    with database.begin() as s:
        s.add_all([_intent(reference="r1"), _intent(reference="r1", owner="m2")])
    with pytest.raises(IntegrityError), database.begin() as s:
        s.add(_intent(reference="r1"))


def test_transaction_hashes_are_unique_and_need_an_intent(database):
    with database.begin() as s:
        intent = _intent()
        s.add(intent)
        s.flush()
        s.add(
            OutboxTransaction(
                intent_id=intent.id, nonce=0, tx_hash="0xaa", raw=b"r", max_fee=2, priority_fee=1
            )
        )
    with pytest.raises(IntegrityError), database.begin() as s:
        s.add(
            OutboxTransaction(
                intent_id=intent.id, nonce=1, tx_hash="0xaa", raw=b"r", max_fee=2, priority_fee=1
            )
        )
    with pytest.raises(IntegrityError), database.begin() as s:
        s.add(
            OutboxTransaction(
                intent_id=999_999, nonce=1, tx_hash="0xbb", raw=b"r", max_fee=2, priority_fee=1
            )
        )


def test_one_delivery_per_event_and_subscription(database):
    with database.begin() as s:
        sub = WebhookSubscription(owner="m1", url="http://x", events=["*"], secret="s")
        event = WebhookEvent(id="evt_1", type="payment.succeeded", owner="m1", data={"a": 1})
        s.add_all([sub, event])
        s.flush()
        s.add(WebhookDelivery(event_seq=event.seq, subscription_id=sub.id))
    with pytest.raises(IntegrityError), database.begin() as s:
        s.add(WebhookDelivery(event_seq=event.seq, subscription_id=sub.id))
    with pytest.raises(IntegrityError), database.begin() as s:
        s.add(WebhookEvent(id="evt_1", type="x", owner="m1", data={}))
