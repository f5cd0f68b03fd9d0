"""Webhooks: merchants subscribe to events; deliveries are signed, retried and replayable.

An event is published in the transaction of whatever caused it, once per event ``id``
(publishing the same id again changes nothing), with one delivery per matching
subscription. :class:`WebhookDispatcher` POSTs each delivery as JSON::

    {"id": "evt_...", "type": "transfer.succeeded", "created": 1767225600, "data": {...}}

with the header ``Carpay-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``
(plus ``Carpay-Event-Id`` and ``Carpay-Event-Type``). A delivery that gets no 2xx answer is
retried with exponential backoff for up to three days. Receivers check the signature with
:func:`verify_signature` and deduplicate by event id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from carpay.errors import NotFound, ValidationFailed, WebhookSignatureInvalid
from carpay.ledger.db import Database, dialect_insert
from carpay.ledger.models import WebhookDelivery, WebhookEvent, WebhookSubscription, utcnow
from carpay.ledger.pagination import Page, paginate

__all__ = [
    "EVENT_TYPES",
    "SIGNATURE_HEADER",
    "NewSubscription",
    "WebhookDispatcher",
    "Webhooks",
    "event_body",
    "sign",
    "verify_signature",
]

_WEBHOOK_MODELS = (WebhookSubscription, WebhookEvent, WebhookDelivery)


def _wants(events: list[str], type: str) -> bool:
    """Whether a subscription to ``events`` gets an event of ``type``."""
    return "*" in events or type in events


log = logging.getLogger(__name__)

#: The event types merchants may subscribe to (``*`` subscribes to all).
EVENT_TYPES = frozenset(
    {
        # the outcome of a request sent through the outbox, to whoever requested it
        "transfer.succeeded",
        "transfer.failed",
        "payment.succeeded",
        "payment.failed",
        "hold.succeeded",
        "hold.failed",
        "merchant.succeeded",
        "merchant.failed",
        # what the ledger shows happened to a merchant (carpay.services.notifications)
        "payment.received",
        "refund.succeeded",
        "hold.placed",
        "hold.captured",
        "hold.released",
        "fine.issued",
        "fine.paid",
        "fine.waived",
        "policy.accepted",
        "policy.renewed",
        "policy.lapsed",
        "policy.cancelled",
        "claim.paid",
    }
)
SIGNATURE_HEADER = "Carpay-Signature"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Carpay-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    tolerance: float = 300,
    *,
    now: float | None = None,
) -> int:
    """Check a ``Carpay-Signature`` header; returns its timestamp.

    Raises :class:`WebhookSignatureInvalid` if the header is missing or malformed, no ``v1``
    signature matches, or its timestamp is more than ``tolerance`` seconds from ``now``
    (which defeats replays of old deliveries).
    """
    if not header:
        raise WebhookSignatureInvalid("no signature header")
    timestamp: int | None = None
    signatures = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookSignatureInvalid("the signature timestamp is not a number") from None
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookSignatureInvalid("the signature header lacks t= or v1=")
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise WebhookSignatureInvalid("the signature timestamp is outside the tolerance")
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise WebhookSignatureInvalid("no signature matches")
    return timestamp


def event_body(event: WebhookEvent) -> bytes:
    """The JSON body every delivery of ``event`` carries."""
    payload = {
        "id": event.id,
        "type": event.type,
        "created": int(event.created_at.timestamp()),
        "data": event.data,
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed(
            "url must be an http or https URL", errors=[{"loc": ["url"], "msg": "not http(s)"}]
        )
    return url


def _check_events(events: Iterable[str]) -> list[str]:
    events = sorted(set(events))
    unknown = [e for e in events if e != "*" and e not in EVENT_TYPES]
    if unknown or not events:
        raise ValidationFailed(
            f"unknown event types: {', '.join(unknown)}" if unknown else "no event types",
            errors=[{"loc": ["events"], "msg": f"unknown event type {e!r}"} for e in unknown]
            or [{"loc": ["events"], "msg": "empty"}],
        )
    return events


@dataclass(frozen=True)
class NewSubscription:
    """A subscription just created; ``secret`` signs its deliveries and is shown this once."""

    subscription: WebhookSubscription
    secret: str = field(repr=False)


class Webhooks:
    """Subscriptions, events and replays, all within the caller's session."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = utcnow,
        token: Callable[[int], str] = secrets.token_urlsafe,
    ) -> None:
        self._clock = clock
        self._token = token

    # -- subscriptions -------------------------------------------------------------------

    def subscribe(
        self,
        session: Session,
        *,
        owner: str,
        url: str,
        events: Iterable[str],
        description: str | None = None,
    ) -> NewSubscription:
        secret = f"whsec_{self._token(32)}"
        sub = WebhookSubscription(
            owner=owner,
            url=_check_url(url),
            events=_check_events(events),
            secret=secret,
            description=description,
            active=True,
            created_at=self._clock(),
        )
        session.add(sub)
        session.flush()
        return NewSubscription(sub, secret)

    def subscription(self, session: Session, sub_id: int, *, owner: str) -> WebhookSubscription:
        sub = session.get(WebhookSubscription, sub_id)
        if sub is None or sub.owner != owner:
            raise NotFound(f"no webhook subscription {sub_id}")
        return sub

    def subscriptions(
        self, session: Session, *, owner: str, limit: int = 50, after: int | None = None
    ) -> Page[WebhookSubscription]:
        stmt = sa.select(WebhookSubscription).where(WebhookSubscription.owner == owner)
        return paginate(session, stmt, WebhookSubscription.id, limit=limit, after=after)

    def update(
        self,
        session: Session,
        sub_id: int,
        *,
        owner: str,
        url: str | None = None,
        events: Iterable[str] | None = None,
        description: str | None = None,
        active: bool | None = None,
    ) -> WebhookSubscription:
        sub = self.subscription(session, sub_id, owner=owner)
        if url is not None:
            sub.url = _check_url(url)
        if events is not None:
            sub.events = _check_events(events)
        if description is not None:
            sub.description = description
        if active is not None:
            sub.active = active
        return sub

    def unsubscribe(self, session: Session, sub_id: int, *, owner: str) -> None:
        session.delete(self.subscription(session, sub_id, owner=owner))

    # -- events --------------------------------------------------------------------------

    def publish(
        self, session: Session, *, event_id: str, type: str, owner: str, data: dict[str, Any]
    ) -> WebhookEvent:
        """Record an event and its deliveries; an ``event_id`` already published is kept."""
        self.record(session, event_id=event_id, type=type, owner=owner, data=data)
        found = self._event(session, event_id)
        assert found is not None
        return found

    def record(
        self, session: Session, *, event_id: str, type: str, owner: str, data: dict[str, Any]
    ) -> int | None:
        """:meth:`publish` without loading the event: its ``seq``, or None if ``event_id`` was
        published already (then nothing changes). In plain SQL statements on the session's
        connection: the relayer and the indexer publish in transactions that hold SQLite's
        write lock, and the ORM's flushes took most of that time."""
        if any(
            isinstance(thing, _WEBHOOK_MODELS)
            for thing in (*session.new, *session.dirty, *session.deleted)
        ):
            session.flush()  # a subscription changed in this transaction counts as changed
        connection = session.connection()
        now = self._clock()
        insert = dialect_insert(connection.dialect.name)
        # Published concurrently by someone else: theirs stands (PostgreSQL waits for it).
        seq = connection.execute(
            insert(WebhookEvent)
            .values(id=event_id, type=type, owner=owner, data=data, created_at=now)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(WebhookEvent.seq)
        ).scalar()
        if seq is None:
            return None
        subscriptions = connection.execute(
            sa.select(WebhookSubscription.id, WebhookSubscription.events).where(
                WebhookSubscription.owner == owner, WebhookSubscription.active.is_(True)
            )
        )
        deliveries = [
            {
                "event_seq": seq,
                "subscription_id": subscription,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "first_attempt_at": now,
                "created_at": now,
            }
            for subscription, events in subscriptions
            if _wants(events, type)
        ]
        if deliveries:
            connection.execute(sa.insert(WebhookDelivery), deliveries)
        return seq

    def _event(self, session: Session, event_id: str) -> WebhookEvent | None:
        return session.scalars(
            sa.select(WebhookEvent).where(WebhookEvent.id == event_id)
        ).one_or_none()

    def _schedule(self, session: Session, event: WebhookEvent) -> list[WebhookDelivery]:
        """Make every matching active subscription's delivery of ``event`` due now."""
        now = self._clock()
        subs = session.scalars(
            sa.select(WebhookSubscription).where(
                WebhookSubscription.owner == event.owner, WebhookSubscription.active.is_(True)
            )
        )
        existing = {d.subscription_id: d for d in event.deliveries}
        deliveries = []
        for sub in subs:
            if not _wants(sub.events, event.type):
                continue
            delivery = existing.get(sub.id)
            if delivery is None:
                delivery = WebhookDelivery(subscription_id=sub.id, created_at=now)
                event.deliveries.append(delivery)
            delivery.state = "pending"
            delivery.attempts = 0
            delivery.next_attempt_at = now
            delivery.first_attempt_at = now
            deliveries.append(delivery)
        session.flush()
        return deliveries

    def event(self, session: Session, event_id: str, *, owner: str) -> WebhookEvent:
        event = self._event(session, event_id)
        if event is None or event.owner != owner:
            raise NotFound(f"no event {event_id}")
        return event

    def events(
        self,
        session: Session,
        *,
        owner: str,
        type: str | None = None,
        limit: int = 50,
        after: int | None = None,
    ) -> Page[WebhookEvent]:
        stmt = sa.select(WebhookEvent).where(WebhookEvent.owner == owner)
        if type is not None:
            stmt = stmt.where(WebhookEvent.type == type)
        return paginate(session, stmt, WebhookEvent.seq, limit=limit, after=after)

    def replay(self, session: Session, event_id: str, *, owner: str) -> list[WebhookDelivery]:
        """Deliver an event again, now, to every subscription that matches it today."""
        return self._schedule(session, self.event(session, event_id, owner=owner))


class WebhookDispatcher:
    """Sends due deliveries from ``db``, one worker; run it in a thread or process.

    A delivery is leased for ``lease`` before its request goes out, so a crash mid-request
    only delays it. Retries back off from ``base_delay`` doubling up to ``max_delay``, and
    stop ``max_age`` after the first attempt.
    """

    def __init__(
        self,
        db: Database,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], datetime] = utcnow,
        timeout: float = 10.0,
        base_delay: timedelta = timedelta(seconds=30),
        max_delay: timedelta = timedelta(hours=6),
        max_age: timedelta = timedelta(days=3),
        lease: timedelta = timedelta(minutes=5),
        batch: int = 20,
    ) -> None:
        self.db = db
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._clock = clock
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_age = max_age
        self.lease = lease
        self.batch = batch

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt."""
        return min(self.base_delay * 2 ** max(attempts - 1, 0), self.max_delay)

    def run_once(self) -> int:
        """Attempt every due delivery once; returns how many were attempted."""
        now = self._clock()
        due_now = (WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now)
        with self.db.read() as session:  # most passes find nothing: no write lock for them
            if session.scalar(sa.select(WebhookDelivery.id).where(*due_now).limit(1)) is None:
                return 0
        with self.db.begin() as session:
            stmt = (
                sa.select(WebhookDelivery)
                .where(*due_now)
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(self.batch)
                .with_for_update(skip_locked=True)
                # Their subscriptions and events in two queries, not two for each delivery.
                .options(selectinload(WebhookDelivery.subscription))
                .options(selectinload(WebhookDelivery.event))
            )
            due = []
            for delivery in session.scalars(stmt):
                delivery.next_attempt_at = now + self.lease
                due.append(
                    (
                        delivery.id,
                        delivery.subscription.url,
                        delivery.subscription.secret,
                        delivery.event.id,
                        delivery.event.type,
                        event_body(delivery.event),
                    )
                )
        for delivery_id, url, secret, event_id, event_type, body in due:
            status, error = self._post(url, secret, event_id, event_type, body)
            self._record(delivery_id, status, error)
        return len(due)

    def _post(
        self, url: str, secret: str, event_id: str, event_type: str, body: bytes
    ) -> tuple[int | None, str | None]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "carpay-webhooks/1",
            "Carpay-Event-Id": event_id,
            "Carpay-Event-Type": event_type,
            SIGNATURE_HEADER: sign(secret, body, int(self._clock().timestamp())),
        }
        try:
            response = self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"

    def _record(self, delivery_id: int, status: int | None, error: str | None) -> None:
        now = self._clock()
        with self.db.begin() as session:
            if error is None:  # the usual outcome, in one statement: it holds the write lock
                deliveries = WebhookDelivery.__table__.c
                session.connection().execute(
                    sa.update(WebhookDelivery.__table__)
                    .where(deliveries.id == delivery_id, deliveries.state == "pending")
                    .values(
                        attempts=deliveries.attempts + 1,
                        last_status=status,
                        last_error=None,
                        state="succeeded",
                        delivered_at=now,
                    )
                )
                return
            delivery = session.get(WebhookDelivery, delivery_id)
            if delivery is None or delivery.state != "pending":
                return
            delivery.attempts += 1
            delivery.last_status = status
            delivery.last_error = error
            next_at = now + self.backoff(delivery.attempts)
            if next_at - delivery.first_attempt_at > self.max_age:
                delivery.state = "failed"
                log.warning("gave up delivering webhook delivery %s: %s", delivery_id, error)
            else:
                delivery.next_attempt_at = next_at

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Deliver until ``stop`` is set."""
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("webhook dispatch failed; retrying")
                busy = 0
            if not busy:
                stop.wait(interval)

    def close(self) -> None:
        self.client.close()
