"""The use cases of carpay; each takes its dependencies explicitly and raises typed errors."""

from carpay.services.idempotency import Claim, IdempotencyKeys, StoredResponse
from carpay.services.outbox import Outbox
from carpay.services.relayer import Relayer, intent_view
from carpay.services.transfers import Transfers
from carpay.services.webhooks import (
    WebhookDispatcher,
    Webhooks,
    sign,
    verify_signature,
)
from carpay.services.workers import start_workers

__all__ = [
    "Claim",
    "IdempotencyKeys",
    "Outbox",
    "Relayer",
    "StoredResponse",
    "Transfers",
    "WebhookDispatcher",
    "Webhooks",
    "intent_view",
    "sign",
    "start_workers",
    "verify_signature",
]
