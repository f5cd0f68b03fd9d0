"""The REST API: FastAPI routers under /v1, problem+json errors, idempotency, webhooks."""

from carpay.api.app import ApiServices, create_app
from carpay.services.workers import start_workers

__all__ = ["ApiServices", "create_app", "start_workers"]
