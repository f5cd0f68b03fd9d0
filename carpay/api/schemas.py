"""The request and response bodies of the API, as published in its OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from carpay.accounts.api_keys import SCOPES
from carpay.ledger.models import ApiKey, OutboxIntent, WebhookEvent, WebhookSubscription
from carpay.ledger.pagination import MAX_PAGE_SIZE, Page
from carpay.services.relayer import intent_view
from carpay.services.webhooks import EVENT_TYPES

__all__ = [
    "ApiKeyCreate",
    "ApiKeyOut",
    "EventOut",
    "IntentOut",
    "List",
    "NewApiKeyOut",
    "NewSubscriptionOut",
    "SubscriptionCreate",
    "SubscriptionOut",
    "SubscriptionUpdate",
    "TransferCreate",
    "TransferOut",
    "page_of",
]

T = TypeVar("T")
#: Text without NUL characters, which PostgreSQL cannot store.
TEXT = r"^[^\x00]*$"
Address = str
_ADDRESS = {"pattern": "^0x[0-9a-fA-F]{40}$", "examples": ["0x" + "ab" * 20]}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class List(BaseModel, Generic[T]):
    """One page, newest first; pass ``next_after`` as ``after`` for the next one."""

    data: list[T]
    has_more: bool
    next_after: int | None


def page_of(page: Page[Any], render: Any) -> dict[str, Any]:
    return {
        "data": [render(item) for item in page.items],
        "has_more": page.has_more,
        "next_after": page.next_after,
    }


#: ``limit`` and ``after`` query parameters of every list.
LIMIT = {"ge": 1, "le": MAX_PAGE_SIZE, "description": "page size"}
AFTER = {"ge": 0, "description": "the `next_after` of the previous page"}


# -- transfers and intents ---------------------------------------------------------------------


class TransferCreate(_In):
    """Send ``amount_minor`` (wei, or the token's smallest unit) to ``to``."""

    to: Address = Field(**_ADDRESS)
    amount_minor: int = Field(gt=0, lt=2**256)
    token: Address | None = Field(None, description="an ERC-20; none for ether", **_ADDRESS)


class IntentOut(BaseModel):
    """A transaction the platform promised to send, and where it is."""

    model_config = ConfigDict(extra="allow")

    id: int
    kind: str
    state: Literal["pending", "sent", "confirmed", "failed"]
    tx_hash: str | None
    block_number: int | None
    error: str | None
    created_at: datetime

    @classmethod
    def of(cls, intent: OutboxIntent) -> dict[str, Any]:
        return intent_view(intent)


class TransferOut(IntentOut):
    """A transfer: an intent of kind ``transfer``."""

    to: Address
    amount_minor: int
    token: Address | None


# -- API keys -----------------------------------------------------------------------------------


class ApiKeyCreate(_In):
    name: str = Field(min_length=1, max_length=200, pattern=TEXT)
    scopes: list[Scope] = Field(min_length=1, examples=[["transfers:read", "transfers:write"]])


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    owner: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> dict[str, Any]:
        return {
            "id": key.id,
            "name": key.name,
            "prefix": key.prefix,
            "owner": key.owner,
            "scopes": list(key.scopes),
            "created_at": key.created_at,
            "last_used_at": key.last_used_at,
            "revoked_at": key.revoked_at,
        }


class NewApiKeyOut(ApiKeyOut):
    secret: str = Field(description="the whole key: shown this once, never again")


# -- webhooks -----------------------------------------------------------------------------------


#: An http(s) URL with a host name or address (no user info), in visible ASCII (anything else
#: percent-encoded): where deliveries are POSTed.
_URL = {
    "max_length": 2000,
    "pattern": r"^https?://[A-Za-z0-9][A-Za-z0-9.\-]*(:[0-9]{1,5})?([/?#][!-~]*)?$",
    "examples": ["https://merchant.example/hooks"],
}
EventType = Literal[tuple(sorted(EVENT_TYPES | {"*"}))]  # type: ignore[valid-type]
Scope = Literal[tuple(sorted(SCOPES))]  # type: ignore[valid-type]


class SubscriptionCreate(_In):
    url: str = Field(**_URL)
    events: list[EventType] = Field(
        min_length=1, examples=[["transfer.succeeded", "transfer.failed"]]
    )
    description: str | None = Field(None, max_length=500, pattern=TEXT)


class SubscriptionUpdate(_In):
    url: str | None = Field(None, **_URL)
    events: list[EventType] | None = Field(None, min_length=1)
    description: str | None = Field(None, max_length=500, pattern=TEXT)
    active: bool | None = None


class SubscriptionOut(BaseModel):
    id: int
    url: str
    events: list[str]
    description: str | None
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, sub: WebhookSubscription) -> dict[str, Any]:
        return {
            "id": sub.id,
            "url": sub.url,
            "events": list(sub.events),
            "description": sub.description,
            "active": sub.active,
            "created_at": sub.created_at,
        }


class NewSubscriptionOut(SubscriptionOut):
    secret: str = Field(description="signs the deliveries: shown this once, never again")


class DeliveryOut(BaseModel):
    subscription_id: int
    state: Literal["pending", "succeeded", "failed"]
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime
    delivered_at: datetime | None


class EventOut(BaseModel):
    id: str
    seq: int
    type: str
    data: dict[str, Any]
    created_at: datetime
    deliveries: list[DeliveryOut]

    @classmethod
    def of(cls, event: WebhookEvent) -> dict[str, Any]:
        return {
            "id": event.id,
            "seq": event.seq,
            "type": event.type,
            "data": event.data,
            "created_at": event.created_at,
            "deliveries": [
                {
                    "subscription_id": d.subscription_id,
                    "state": d.state,
                    "attempts": d.attempts,
                    "last_status": d.last_status,
                    "last_error": d.last_error,
                    "next_attempt_at": d.next_attempt_at,
                    "delivered_at": d.delivered_at,
                }
                for d in event.deliveries
            ],
        }
