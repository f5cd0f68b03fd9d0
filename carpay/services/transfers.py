"""Transfers: the platform sends ether or an ERC-20 token to an address, through the outbox.

The first money-moving use case, and the model for the others: validate, then write an
intent to the outbox in the caller's transaction; the relayer does the rest.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from carpay.errors import ValidationFailed
from carpay.ledger.models import OutboxIntent
from carpay.ledger.pagination import Page
from carpay.services.outbox import Outbox, checksum

__all__ = ["KIND", "Transfers", "erc20_transfer_data"]

#: The outbox ``kind`` of a transfer; its events are ``transfer.succeeded`` and ``.failed``.
KIND = "transfer"
_TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")  # transfer(address,uint256)


def erc20_transfer_data(to: str, amount: int) -> bytes:
    """Calldata of ERC-20 ``transfer(to, amount)``."""
    return _TRANSFER_SELECTOR + bytes.fromhex(to[2:]).rjust(32, b"\0") + amount.to_bytes(32)


class Transfers:
    """Requests and reads transfers; ``outbox`` is where they are written."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def request(
        self,
        session: Session,
        *,
        owner: str,
        to: str,
        amount_minor: int,
        token: str | None = None,
        reference: str | None = None,
    ) -> OutboxIntent:
        """Promise to send ``amount_minor`` (wei, or the token's smallest unit) to ``to``."""
        to = checksum(to, "to")
        if not 0 < amount_minor < 2**256:
            raise ValidationFailed(
                "amount_minor must be positive and fit in 256 bits",
                errors=[{"loc": ["amount_minor"], "msg": "out of range"}],
            )
        details = {"to": to, "amount_minor": amount_minor, "token": None}
        if token is None:
            return self.outbox.enqueue(
                session,
                kind=KIND,
                owner=owner,
                to=to,
                value=amount_minor,
                details=details,
                reference=reference,
            )
        token = checksum(token, "token")
        details["token"] = token
        return self.outbox.enqueue(
            session,
            kind=KIND,
            owner=owner,
            to=token,
            data=erc20_transfer_data(to, amount_minor),
            details=details,
            reference=reference,
        )

    def get(self, session: Session, transfer_id: int, *, owner: str | None) -> OutboxIntent:
        return self.outbox.get(session, transfer_id, owner=owner, kind=KIND)

    def list(
        self, session: Session, *, owner: str | None, limit: int = 50, after: int | None = None
    ) -> Page[OutboxIntent]:
        return self.outbox.list(session, owner=owner, kind=KIND, limit=limit, after=after)
