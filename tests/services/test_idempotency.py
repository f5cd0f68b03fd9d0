"""Tests of carpay/services/idempotency.py: one execution per key, whatever the timing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from carpay.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from carpay.ledger.models import IdempotencyKey, OutboxIntent
from carpay.services.idempotency import Claim, IdempotencyKeys, StoredResponse
from carpay.services.outbox import Outbox

REQ = dict(method="POST", path="/v1/transfers", fingerprint="f" * 64)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def keys(database, clock):
    return IdempotencyKeys(database, clock=clock, sleep=lambda s: None, wait=0.2, poll=0.05)


def test_first_claim_runs_then_the_answer_is_stored(database, keys):
    claim = keys.claim("k1", "abc", **REQ)
    assert isinstance(claim, Claim)
    with database.begin() as s:
        keys.complete(s, claim, 201, '{"id": 1}')
    assert keys.claim("k1", "abc", **REQ) == StoredResponse(201, '{"id": 1}')


def test_same_key_in_another_scope_is_another_key(database, keys):
    assert isinstance(keys.claim("k1", "abc", **REQ), Claim)
    assert isinstance(keys.claim("k2", "abc", **REQ), Claim)


@pytest.mark.parametrize(
    "change", [{"fingerprint": "e" * 64}, {"path": "/v1/other"}, {"method": "PUT"}]
)
def test_same_key_different_request_is_refused(database, keys, change):
    claim = keys.claim("k1", "abc", **REQ)
    with database.begin() as s:
        keys.complete(s, claim, 201, "{}")
    with pytest.raises(IdempotencyKeyReused):
        keys.claim("k1", "abc", **(REQ | change))


def test_duplicate_while_running_is_in_use(keys):
    keys.claim("k1", "abc", **REQ)
    with pytest.raises(IdempotencyKeyInUse):
        keys.claim("k1", "abc", **REQ)


def test_released_key_can_be_claimed_again(keys):
    first = keys.claim("k1", "abc", **REQ)
    keys.release(first)
    second = keys.claim("k1", "abc", **REQ)
    assert isinstance(second, Claim) and second.token != first.token


def test_a_dead_request_is_taken_over_and_cannot_complete(database, keys, clock):
    dead = keys.claim("k1", "abc", **REQ)
    clock.now += timedelta(minutes=2)
    alive = keys.claim("k1", "abc", **REQ)
    assert isinstance(alive, Claim) and alive.id == dead.id
    with pytest.raises(IdempotencyKeyInUse), database.begin() as s:
        keys.complete(s, dead, 201, '{"from": "dead"}')
    with database.begin() as s:
        keys.complete(s, alive, 201, '{"from": "alive"}')
    assert keys.claim("k1", "abc", **REQ) == StoredResponse(201, '{"from": "alive"}')


def test_concurrent_requests_execute_exactly_once(database):
    keys = IdempotencyKeys(database, wait=30, poll=0.01)
    outbox = Outbox(sender="0x" + "a" * 40, chain_id=1337)
    results: list[object] = []
    barrier = threading.Barrier(8)

    def request() -> None:
        barrier.wait()
        claim = keys.claim("k1", "same", **REQ)
        if isinstance(claim, StoredResponse):
            results.append(claim)
            return
        with database.begin() as s:
            intent = outbox.enqueue(s, kind="transfer", owner="m1", to="0x" + "b" * 40, value=1)
            keys.complete(s, claim, 202, f'{{"id": {intent.id}}}')
        results.append(StoredResponse(202, f'{{"id": {intent.id}}}'))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with database.begin() as s:
        intents = s.scalars(sa.select(OutboxIntent)).all()
        assert s.scalar(sa.select(sa.func.count()).select_from(IdempotencyKey)) == 1
    assert len(intents) == 1
    assert results == [StoredResponse(202, f'{{"id": {intents[0].id}}}')] * 8
