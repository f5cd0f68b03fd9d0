"""Tests of carpay/services/webhooks.py: signed, deduplicated, retried, replayable deliveries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from carpay.errors import NotFound, ValidationFailed, WebhookSignatureInvalid
from carpay.ledger.models import WebhookDelivery, WebhookEvent
from carpay.services.webhooks import WebhookDispatcher, Webhooks, sign, verify_signature
from carpay.testing import free_port
from carpay.testing.webhooks import WebhookReceiver


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def hooks(clock):
    return Webhooks(clock=clock)


@pytest.fixture
def dispatcher(database, clock):
    d = WebhookDispatcher(database, clock=clock, timeout=5)
    yield d
    d.close()


# -- signatures -----------------------------------------------------------------------------


def test_signature_round_trip():
    header = sign("whsec_x", b'{"a":1}', 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature("whsec_x", header, b'{"a":1}', now=1_700_000_100) == 1_700_000_000


@pytest.mark.parametrize(
    "secret, header, body, now",
    [
        ("whsec_y", None, b"{}", 0),  # wrong secret (header filled below)
        ("whsec_x", None, b"{ }", 0),  # tampered body
        ("whsec_x", None, b"{}", 301),  # too old
        ("whsec_x", "", b"{}", 0),  # missing
        ("whsec_x", "t=abc,v1=00", b"{}", 0),  # malformed time
        ("whsec_x", "v1=00", b"{}", 0),  # no time
        ("whsec_x", "t=0", b"{}", 0),  # no signature
    ],
)
def test_bad_signatures_are_refused(secret, header, body, now):
    if header is None:
        header = sign("whsec_x", b"{}", 0)
    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(secret, header, body, tolerance=300, now=now)


def test_any_matching_v1_signature_is_enough():
    good = sign("whsec_x", b"{}", 10).split(",")[1]
    assert verify_signature("whsec_x", f"t=10,v1=deadbeef,{good}", b"{}", now=10) == 10


# -- subscriptions and events ----------------------------------------------------------------


def test_subscriptions_validate_and_belong_to_their_owner(database, hooks):
    with database.begin() as s:
        new = hooks.subscribe(s, owner="m1", url="https://x.test/h", events=["payment.succeeded"])
        assert new.secret.startswith("whsec_") and new.secret not in repr(new)
        with pytest.raises(ValidationFailed):
            hooks.subscribe(s, owner="m1", url="ftp://x.test/h", events=["*"])
        with pytest.raises(ValidationFailed):
            hooks.subscribe(s, owner="m1", url="https://x.test", events=["car.exploded"])
        with pytest.raises(NotFound):
            hooks.subscription(s, new.subscription.id, owner="m2")
        updated = hooks.update(s, new.subscription.id, owner="m1", events=["*"], active=False)
        assert (updated.events, updated.active) == (["*"], False)
        hooks.unsubscribe(s, new.subscription.id, owner="m1")
        assert hooks.subscriptions(s, owner="m1").items == []


def test_publish_is_deduplicated_by_event_id(database, hooks):
    with database.begin() as s:
        hooks.subscribe(s, owner="m1", url="https://x.test/h", events=["*"])
        first = hooks.publish(s, event_id="evt_1", type="fine.issued", owner="m1", data={"a": 1})
        again = hooks.publish(s, event_id="evt_1", type="fine.issued", owner="m1", data={"a": 2})
        assert again.seq == first.seq and again.data == {"a": 1}
    with database.begin() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 1
        assert s.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 1


def test_only_matching_active_subscriptions_of_the_owner_get_deliveries(database, hooks):
    with database.begin() as s:
        all_ = hooks.subscribe(s, owner="m1", url="https://x.test/1", events=["*"])
        match = hooks.subscribe(s, owner="m1", url="https://x.test/2", events=["fine.issued"])
        hooks.subscribe(s, owner="m1", url="https://x.test/3", events=["policy.renewed"])
        off = hooks.subscribe(s, owner="m1", url="https://x.test/4", events=["*"])
        hooks.update(s, off.subscription.id, owner="m1", active=False)
        hooks.subscribe(s, owner="m2", url="https://x.test/5", events=["*"])
        event = hooks.publish(s, event_id="evt_1", type="fine.issued", owner="m1", data={})
        subs = sorted(d.subscription_id for d in event.deliveries)
    assert subs == sorted([all_.subscription.id, match.subscription.id])


# -- delivery --------------------------------------------------------------------------------


def test_delivery_is_signed_and_verifiable(database, hooks, dispatcher, clock):
    with WebhookReceiver() as receiver:
        with database.begin() as s:
            new = hooks.subscribe(s, owner="m1", url=receiver.url, events=["*"])
            hooks.publish(
                s,
                event_id="evt_9",
                type="payment.succeeded",
                owner="m1",
                data={"amount_minor": 2**70},
            )
        assert dispatcher.run_once() == 1
        assert dispatcher.run_once() == 0  # delivered: nothing due any more
    [got] = receiver.received
    assert got.headers["Carpay-Event-Id"] == "evt_9"
    assert verify_signature(
        new.secret, got.headers["Carpay-Signature"], got.body, now=clock.now.timestamp()
    )
    assert json.loads(got.body) == {
        "id": "evt_9",
        "type": "payment.succeeded",
        "created": int(clock.now.timestamp()),
        "data": {"amount_minor": 2**70},
    }
    with database.begin() as s:
        delivery = s.scalars(sa.select(WebhookDelivery)).one()
        assert (delivery.state, delivery.attempts, delivery.last_status) == ("succeeded", 1, 200)


def test_failures_back_off_exponentially_then_succeed(database, hooks, dispatcher, clock):
    with WebhookReceiver([500, 503, 200]) as receiver:
        with database.begin() as s:
            hooks.subscribe(s, owner="m1", url=receiver.url, events=["*"])
            hooks.publish(s, event_id="evt_1", type="fine.issued", owner="m1", data={})
        start = clock.now
        assert dispatcher.run_once() == 1
        with database.begin() as s:
            d = s.scalars(sa.select(WebhookDelivery)).one()
            assert (d.state, d.attempts, d.last_status) == ("pending", 1, 500)
            assert d.next_attempt_at == start + timedelta(seconds=30)
        clock.now = start + timedelta(seconds=29)
        assert dispatcher.run_once() == 0  # not due yet
        clock.now = start + timedelta(seconds=30)
        assert dispatcher.run_once() == 1
        with database.begin() as s:
            d = s.scalars(sa.select(WebhookDelivery)).one()
            assert d.next_attempt_at == clock.now + timedelta(seconds=60)
        clock.now += timedelta(seconds=60)
        assert dispatcher.run_once() == 1
    assert len(receiver.received) == 3
    assert len({r.headers["Carpay-Event-Id"] for r in receiver.received}) == 1
    with database.begin() as s:
        assert s.scalars(sa.select(WebhookDelivery)).one().state == "succeeded"


def test_a_pass_records_each_of_its_deliveries(database, hooks, dispatcher, clock):
    """One pass delivers an event to two subscriptions and two events to one: what each
    attempt gave is recorded for that delivery alone."""
    with WebhookReceiver() as good, WebhookReceiver([500]) as bad:
        with database.begin() as s:
            hooks.subscribe(s, owner="m1", url=good.url, events=["*"])
            hooks.subscribe(s, owner="m1", url=bad.url, events=["fine.issued"])
            hooks.publish(s, event_id="evt_1", type="fine.issued", owner="m1", data={})
            hooks.publish(s, event_id="evt_2", type="fine.paid", owner="m1", data={})
        assert dispatcher.run_once() == 3
    with database.begin() as s:
        deliveries = {
            (d.subscription.url, d.event.id): d for d in s.scalars(sa.select(WebhookDelivery))
        }
        seen = {key: (d.state, d.attempts, d.last_status) for key, d in deliveries.items()}
        retry_at = deliveries[(bad.url, "evt_1")].next_attempt_at
    assert seen == {
        (good.url, "evt_1"): ("succeeded", 1, 200),
        (good.url, "evt_2"): ("succeeded", 1, 200),
        (bad.url, "evt_1"): ("pending", 1, 500),
    }
    assert retry_at == clock.now + timedelta(seconds=30)
    assert dispatcher.run_once() == 0  # the failed one waits for its backoff


def test_backoff_is_capped_and_gives_up_after_three_days(database, hooks, dispatcher, clock):
    assert dispatcher.backoff(1) == timedelta(seconds=30)
    assert dispatcher.backoff(5) == timedelta(minutes=8)
    assert dispatcher.backoff(30) == timedelta(hours=6)
    url = f"http://127.0.0.1:{free_port()}/nobody-listens"
    with database.begin() as s:
        hooks.subscribe(s, owner="m1", url=url, events=["*"])
        hooks.publish(s, event_id="evt_1", type="fine.issued", owner="m1", data={})
    start = clock.now
    attempts = 0
    while True:
        with database.begin() as s:
            d = s.scalars(sa.select(WebhookDelivery)).one()
            if d.state != "pending":
                break
            clock.now = d.next_attempt_at
        assert dispatcher.run_once() == 1
        attempts += 1
    assert d.state == "failed" and d.attempts == attempts
    assert "ConnectError" in d.last_error
    assert timedelta(days=2, hours=18) <= clock.now - start <= timedelta(days=3)
    assert 15 < attempts < 30


def test_replay_delivers_again(database, hooks, dispatcher):
    with WebhookReceiver() as receiver:
        with database.begin() as s:
            hooks.subscribe(s, owner="m1", url=receiver.url, events=["*"])
            hooks.publish(s, event_id="evt_1", type="fine.issued", owner="m1", data={})
        assert dispatcher.run_once() == 1
        with database.begin() as s:
            with pytest.raises(NotFound):
                hooks.replay(s, "evt_1", owner="m2")
            [delivery] = hooks.replay(s, "evt_1", owner="m1")
            assert (delivery.state, delivery.attempts) == ("pending", 0)
        assert dispatcher.run_once() == 1
    assert [r.body for r in receiver.received][0] == receiver.received[1].body
    assert len(receiver.received) == 2


def test_an_event_published_by_two_transactions_at_once_is_recorded_once(database, hooks):
    """The second transaction waits for the first (SQLite's writers queue; PostgreSQL waits
    on the unique event id), then finds the event published and changes nothing."""
    import threading

    with database.begin() as s:
        hooks.subscribe(s, owner="m1", url="https://x.test/h", events=["*"])
    second: list = []
    started = threading.Event()

    def publish_again() -> None:
        started.set()
        with database.begin() as s:
            second.append(
                hooks.record(s, event_id="evt_1", type="fine.issued", owner="m1", data={"b": 2})
            )

    with database.begin() as s:
        first = hooks.record(s, event_id="evt_1", type="fine.issued", owner="m1", data={"a": 1})
        other = threading.Thread(target=publish_again)
        other.start()
        started.wait(5)
        other.join(0.3)
        assert other.is_alive()  # waiting for this transaction
    other.join(10)
    assert isinstance(first, int) and second == [None]
    with database.read() as s:
        [event] = s.scalars(sa.select(WebhookEvent)).all()
        assert (event.seq, event.data) == (first, {"a": 1})
        assert s.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 1


def test_a_subscription_changed_earlier_in_the_transaction_counts_as_changed(database, hooks):
    with database.begin() as s:
        on = hooks.subscribe(s, owner="m1", url="https://x.test/1", events=["*"])
        off = hooks.subscribe(s, owner="m1", url="https://x.test/2", events=["*"])
    with database.begin() as s:
        hooks.subscription(s, off.subscription.id, owner="m1").active = False  # not flushed
        event = hooks.publish(s, event_id="evt_1", type="fine.issued", owner="m1", data={})
        assert [d.subscription_id for d in event.deliveries] == [on.subscription.id]
