"""Idempotency keys: a request repeated with the same key gets the first answer, never a rerun.

The protocol, for one caller's key:

1. :meth:`IdempotencyKeys.claim` inserts the key in its own committed transaction. The unique
   constraint on ``(scope, key)`` is the arbiter: of two concurrent requests exactly one
   inserts and runs; the other waits for the first to finish and gets its stored answer, or
   :class:`~carpay.errors.IdempotencyKeyInUse` if that takes too long.
2. The request does its work and calls :meth:`IdempotencyKeys.complete` in the *same*
   transaction as its effects: the effects and the stored answer commit together or not at
   all. A crash in between leaves a claim with no effects, which a retry takes over once
   ``lock_timeout`` has passed.
3. A request that fails calls :meth:`IdempotencyKeys.release`, so the caller may try again.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carpay.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from carpay.ledger.db import Database
from carpay.ledger.models import IdempotencyKey, utcnow

__all__ = ["Claim", "IdempotencyKeys", "StoredResponse"]


@dataclass(frozen=True)
class StoredResponse:
    """The answer the first request with this key got."""

    status: int
    body: str


@dataclass(frozen=True)
class Claim:
    """The right to run the request of one key, held until completed or released."""

    id: int
    token: str


class IdempotencyKeys:
    """Claims, completes and releases idempotency keys in ``db``.

    A duplicate waits up to ``wait`` seconds (polling every ``poll``) for the first request
    to finish. A claim older than ``lock_timeout`` that never completed belongs to a request
    that died, and may be taken over.
    """

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        wait: float = 5.0,
        poll: float = 0.05,
        lock_timeout: timedelta = timedelta(minutes=1),
    ) -> None:
        self.db = db
        self._clock = clock
        self._sleep = sleep
        self.wait = wait
        self.poll = poll
        self.lock_timeout = lock_timeout

    def claim(
        self, scope: str, key: str, *, method: str, path: str, fingerprint: str
    ) -> Claim | StoredResponse:
        """Claim ``key`` of ``scope`` for a request, or get the answer it already got.

        Raises :class:`IdempotencyKeyReused` when the key came with a different request
        (``method``, ``path`` or ``fingerprint`` of the body), and
        :class:`IdempotencyKeyInUse` when the first request is still running after ``wait``.
        """
        waited = 0.0
        while True:
            token = secrets.token_hex(16)
            try:
                with self.db.begin() as session:
                    now = self._clock()
                    # In plain SQL on the session's connection: it holds the write lock.
                    claimed = session.connection().execute(
                        sa.insert(IdempotencyKey)
                        .values(
                            scope=scope,
                            key=key,
                            fingerprint=fingerprint,
                            method=method,
                            path=path,
                            state="started",
                            lock_token=token,
                            locked_at=now,
                            created_at=now,
                        )
                        .returning(IdempotencyKey.id)
                    )
                    return Claim(claimed.scalar_one(), token)
            except IntegrityError:
                pass
            with self.db.begin() as session:
                row = session.scalars(
                    sa.select(IdempotencyKey).where(
                        IdempotencyKey.scope == scope, IdempotencyKey.key == key
                    )
                ).one_or_none()
                if row is not None:
                    if (row.method, row.path, row.fingerprint) != (method, path, fingerprint):
                        raise IdempotencyKeyReused()
                    if row.state == "completed":
                        assert row.response_status is not None and row.response_body is not None
                        return StoredResponse(row.response_status, row.response_body)
                    stale = row.locked_at is None or (
                        self._clock() - row.locked_at >= self.lock_timeout
                    )
                    if stale and self._take_over(session, row, token):
                        return Claim(row.id, token)
            if row is not None:  # released meanwhile: claim again at once
                if waited >= self.wait:
                    raise IdempotencyKeyInUse()
                self._sleep(self.poll)
                waited += self.poll

    def _take_over(self, session: Session, row: IdempotencyKey, token: str) -> bool:
        result = session.execute(
            sa.update(IdempotencyKey)
            .where(
                IdempotencyKey.id == row.id,
                IdempotencyKey.state == "started",
                IdempotencyKey.lock_token == row.lock_token,
            )
            .values(lock_token=token, locked_at=self._clock())
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    def complete(self, session: Session, claim: Claim, status: int, body: str) -> None:
        """Store the answer, in ``session``'s transaction, the one holding the effects.

        Raises :class:`IdempotencyKeyInUse` if the claim was taken over meanwhile: the
        caller's transaction must then roll back, so the effects happen only once.
        """
        result = session.connection().execute(  # plain SQL: no ORM objects to synchronize
            sa.update(IdempotencyKey)
            .where(
                IdempotencyKey.id == claim.id,
                IdempotencyKey.state == "started",
                IdempotencyKey.lock_token == claim.token,
            )
            .values(
                state="completed",
                response_status=status,
                response_body=body,
                completed_at=self._clock(),
                lock_token=None,
            )
        )
        if result.rowcount != 1:
            raise IdempotencyKeyInUse("the request took too long and was taken over")

    def release(self, claim: Claim) -> None:
        """Give the key up after a failed request, so that it can be used again."""
        with self.db.begin() as session:
            session.execute(
                sa.delete(IdempotencyKey).where(
                    IdempotencyKey.id == claim.id,
                    IdempotencyKey.state == "started",
                    IdempotencyKey.lock_token == claim.token,
                )
            )
