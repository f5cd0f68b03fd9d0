"""SQLAlchemy 2 models of the platform's own tables: API keys, idempotency, outbox, webhooks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = [
    "ApiKey",
    "Base",
    "IdempotencyKey",
    "OutboxIntent",
    "OutboxTransaction",
    "ParticipantAccount",
    "Uint256",
    "UtcDateTime",
    "WebhookDelivery",
    "WebhookEvent",
    "WebhookSubscription",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: give a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Uint256(TypeDecorator[int]):
    """An unsigned 256-bit integer (wei, token units), stored as decimal text: exact everywhere."""

    impl = sa.String(78)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if not 0 <= int(value) < 2**256:
            raise ValueError(f"{value} does not fit in a uint256")
        return str(int(value))

    def process_result_value(self, value: str | None, dialect: Any) -> int | None:
        return None if value is None else int(value)


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class ApiKey(Base):
    """A key a merchant or third-party app calls the API with.

    Only ``secret_hash`` (SHA-256 of the whole token) is stored; ``prefix`` is the public,
    unique part of the token by which it is found.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(sa.String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(200))
    owner: Mapped[str] = mapped_column(sa.String(100), index=True)
    scopes: Mapped[list[str]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class IdempotencyKey(Base):
    """One Idempotency-Key of one caller: the request it came with and the answer it got.

    ``state`` is ``started`` while the first request runs (``lock_token`` names that run) and
    ``completed`` once its response is stored, in the same transaction as its effects.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(sa.String(100))
    key: Mapped[str] = mapped_column(sa.String(255))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    method: Mapped[str] = mapped_column(sa.String(10))
    path: Mapped[str] = mapped_column(sa.String(500))
    state: Mapped[str] = mapped_column(sa.String(16), default="started")
    lock_token: Mapped[str | None] = mapped_column(sa.String(64))
    locked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ParticipantAccount(Base):
    """Which API owner speaks for an address on a chain (a merchant, a registrar): whose keys
    act for it and whose webhooks hear of it (see :mod:`carpay.accounts.participants`).

    One owner may hold several addresses (a fuel chain's stations); an address has one owner.
    """

    __tablename__ = "participant_accounts"
    __table_args__ = (sa.UniqueConstraint("chain_id", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(sa.String(100), index=True)
    chain_id: Mapped[int] = mapped_column(sa.BigInteger)
    address: Mapped[str] = mapped_column(sa.String(42))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OutboxIntent(Base):
    """A transaction the platform has promised to send: written before anything goes out.

    ``state``: ``pending`` (nothing signed) -> ``sent`` (a signed transaction with ``nonce``
    is recorded in ``outbox_transactions``; it may or may not have reached the node) ->
    ``confirmed`` (mined, succeeded) or ``failed`` (mined and reverted, refused by the node,
    or impossible to send; ``error`` says why).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        sa.UniqueConstraint("owner", "reference"),
        sa.Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(50))
    owner: Mapped[str] = mapped_column(sa.String(100), index=True)
    #: The caller's own unique reference (e.g. its idempotency key), if any.
    reference: Mapped[str | None] = mapped_column(sa.String(255))
    chain_id: Mapped[int]
    sender: Mapped[str] = mapped_column(sa.String(42))
    to_address: Mapped[str | None] = mapped_column(sa.String(42))
    value: Mapped[int] = mapped_column(Uint256, default=0)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary, default=b"")
    gas_limit: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: What the intent is for, in the caller's terms (shown in the API and in events).
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    nonce: Mapped[int | None] = mapped_column(sa.BigInteger)
    tx_hash: Mapped[str | None] = mapped_column(sa.String(66))
    block_number: Mapped[int | None] = mapped_column(sa.BigInteger)
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    transactions: Mapped[list[OutboxTransaction]] = relationship(
        back_populates="intent", order_by="OutboxTransaction.id", cascade="all, delete-orphan"
    )


class OutboxTransaction(Base):
    """One signed transaction for an intent: the first, or a replacement with the same nonce.

    Recorded, raw bytes and hash, before it is broadcast, so a restart sends the very same
    transaction again instead of signing a new payment. ``status``: ``signed`` (not known to
    have reached the node), ``broadcast``, ``rejected`` (the node refused it), ``mined``.
    """

    __tablename__ = "outbox_transactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    intent_id: Mapped[int] = mapped_column(
        sa.ForeignKey("outbox.id", ondelete="CASCADE"), index=True
    )
    nonce: Mapped[int] = mapped_column(sa.BigInteger)
    tx_hash: Mapped[str] = mapped_column(sa.String(66), unique=True)
    raw: Mapped[bytes] = mapped_column(sa.LargeBinary)
    max_fee: Mapped[int] = mapped_column(Uint256)
    priority_fee: Mapped[int] = mapped_column(Uint256)
    status: Mapped[str] = mapped_column(sa.String(16), default="signed")
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    broadcast_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    intent: Mapped[OutboxIntent] = relationship(back_populates="transactions")


class WebhookSubscription(Base):
    """A merchant's endpoint and the event types it wants.

    ``secret`` signs the deliveries, so it is kept (not hashed); it is shown once, at creation.
    """

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(sa.String(100), index=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    events: Mapped[list[str]] = mapped_column(sa.JSON)
    secret: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str | None] = mapped_column(sa.String(500))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WebhookEvent(Base):
    """Something that happened that merchants may hear about; ``id`` is unique (deduplication).

    ``seq`` orders events for keyset pagination; ``id`` is the public ``evt_...`` name.
    """

    __tablename__ = "webhook_events"

    seq: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[str] = mapped_column(sa.String(100), unique=True)
    type: Mapped[str] = mapped_column(sa.String(100), index=True)
    owner: Mapped[str] = mapped_column(sa.String(100), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    deliveries: Mapped[list[WebhookDelivery]] = relationship(
        back_populates="event", order_by="WebhookDelivery.id", cascade="all, delete-orphan"
    )


class WebhookDelivery(Base):
    """The delivery of one event to one subscription, retried with backoff.

    ``state``: ``pending`` (due at ``next_attempt_at``), ``succeeded`` or ``failed`` (gave up).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("event_seq", "subscription_id"),
        sa.Index("ix_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_seq: Mapped[int] = mapped_column(sa.ForeignKey("webhook_events.seq", ondelete="CASCADE"))
    subscription_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    first_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    event: Mapped[WebhookEvent] = relationship(back_populates="deliveries")
    subscription: Mapped[WebhookSubscription] = relationship()
