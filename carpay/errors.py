"""The one exception hierarchy of carpay: every error has a stable code for API and CLI."""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "CarpayError",
    "ChainError",
    "ConfigError",
    "Conflict",
    "ContractBuildError",
    "DeploymentNotFound",
    "IdempotencyKeyInUse",
    "IdempotencyKeyRequired",
    "IdempotencyKeyReused",
    "InsufficientFunds",
    "InternalError",
    "InvalidVin",
    "MethodNotAllowed",
    "NodeError",
    "NonceTooLow",
    "NotAuthorized",
    "NotFound",
    "RateLimited",
    "ServiceUnavailable",
    "TransactionRejected",
    "TransactionReverted",
    "TransactionTimeout",
    "Unauthenticated",
    "ValidationFailed",
    "WebhookSignatureInvalid",
]


class CarpayError(Exception):
    """Base of every error carpay raises on purpose.

    ``code`` is stable: the API maps it to an RFC 9457 problem ``type`` and the CLI prints
    ``message`` as one line. Messages never contain secrets (keys, passwords, tokens).
    """

    code = "carpay-error"
    status = 500

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__.strip().splitlines()[0])

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(CarpayError):
    """The configuration is invalid."""

    code = "config-invalid"
    status = 500


class NotAuthorized(CarpayError):
    """The caller may not do this."""

    code = "not-authorized"
    status = 403


class InsufficientFunds(CarpayError):
    """The account does not hold enough to pay for this."""

    code = "insufficient-funds"
    status = 402


class ChainError(CarpayError):
    """The node refused or failed a request."""

    code = "chain-error"
    status = 502


class NodeError(ChainError):
    """The embedded node could not start or serve."""

    code = "node-error"


class ContractBuildError(ChainError):
    """A contract failed to compile."""

    code = "contract-build-failed"


class DeploymentNotFound(ChainError):
    """No deployment of that contract is recorded for this chain."""

    code = "deployment-not-found"
    status = 404


class TransactionRejected(ChainError):
    """The node refused to accept the transaction.

    Nothing was broadcast. The message is the node's own, e.g.
    ``"replacement transaction underpriced"``.
    """

    code = "transaction-rejected"
    status = 409


class NonceTooLow(TransactionRejected):
    """The transaction's nonce was already used."""

    code = "nonce-too-low"
    status = 409


class TransactionTimeout(ChainError):
    """The transaction was not mined in time."""

    code = "transaction-timeout"
    status = 504


class TransactionReverted(ChainError):
    """The contract refused the transaction.

    ``reason`` is the decoded revert string (e.g. ``"checkout: invoice expired"``) when the
    contract gave one; ``data`` the raw revert data; ``tx_hash`` the mined transaction, if any.
    """

    code = "transaction-reverted"
    status = 422

    def __init__(
        self, reason: str | None = None, *, data: bytes = b"", tx_hash: str | None = None
    ) -> None:
        self.reason = reason
        self.data = data
        self.tx_hash = tx_hash
        super().__init__(f"reverted: {reason}" if reason else "reverted without a reason")


class BadRequest(CarpayError):
    """The request is malformed."""

    code = "bad-request"
    status = 400


class ValidationFailed(CarpayError):
    """The request is well-formed but its content is invalid.

    ``errors`` lists what is wrong, each ``{"loc": [...], "msg": "..."}``.
    """

    code = "validation-failed"
    status = 422

    def __init__(self, message: str | None = None, *, errors: list[dict] | None = None) -> None:
        self.errors = errors or []
        super().__init__(message)


class InvalidVin(ValidationFailed):
    """The vehicle identification number is not a valid ISO 3779 VIN."""

    code = "invalid-vin"


class Unauthenticated(CarpayError):
    """A valid API key is required."""

    code = "unauthenticated"
    status = 401


class NotFound(CarpayError):
    """No such resource."""

    code = "not-found"
    status = 404


class Conflict(CarpayError):
    """The resource is not in a state that allows this."""

    code = "conflict"
    status = 409


class RateLimited(CarpayError):
    """Too many requests; try again after ``retry_after`` seconds."""

    code = "rate-limited"
    status = 429

    def __init__(self, message: str | None = None, *, retry_after: int = 1) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class IdempotencyKeyRequired(CarpayError):
    """This request moves money: it needs an Idempotency-Key header."""

    code = "idempotency-key-required"
    status = 400


class IdempotencyKeyReused(CarpayError):
    """This Idempotency-Key was already used with a different request."""

    code = "idempotency-key-reused"
    status = 422


class IdempotencyKeyInUse(CarpayError):
    """A request with this Idempotency-Key is still being processed; retry shortly."""

    code = "idempotency-key-in-use"
    status = 409


class WebhookSignatureInvalid(CarpayError):
    """The webhook signature is missing, malformed, stale or wrong."""

    code = "webhook-signature-invalid"
    status = 400


class MethodNotAllowed(CarpayError):
    """This resource does not support that HTTP method."""

    code = "method-not-allowed"
    status = 405


class ServiceUnavailable(CarpayError):
    """This part of the platform is not available right now."""

    code = "service-unavailable"
    status = 503


class InternalError(CarpayError):
    """Something went wrong on our side; it has been logged."""

    code = "internal-error"
    status = 500
