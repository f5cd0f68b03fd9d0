"""The outbox: every transaction the platform will send is written here first.

A service that moves money calls :meth:`Outbox.enqueue` inside its own database
transaction; the relayer (:mod:`carpay.services.relayer`) later signs, sends and tracks it.
An intent's ``state`` goes ``pending`` -> ``sent`` -> ``confirmed`` or ``failed``; see
:class:`carpay.ledger.models.OutboxIntent`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from eth_abi import encode
from eth_utils import (
    function_signature_to_4byte_selector,
    is_address,
    is_checksum_address,
    to_checksum_address,
)
from sqlalchemy.orm import Session

from carpay.errors import NotFound, ValidationFailed
from carpay.ledger.models import OutboxIntent, utcnow
from carpay.ledger.pagination import Page, paginate

__all__ = ["APPROVAL_KIND", "STATES", "Outbox"]

#: The states of an intent, in order; the last two are final.
STATES = ("pending", "sent", "confirmed", "failed")
#: The kind of the approvals :meth:`Outbox.approve` enqueues.
APPROVAL_KIND = "approval"
_APPROVE = function_signature_to_4byte_selector("approve(address,uint256)")


def checksum(address: str, field: str) -> str:
    """``address`` in EIP-55 form, or :class:`ValidationFailed` naming ``field``."""
    if not isinstance(address, str):
        raise _not_an_address(field)
    form = _eip55(address)
    if form is None:
        raise _not_an_address(field)
    if not form:
        raise ValidationFailed(
            f"{field} fails its EIP-55 checksum", errors=[{"loc": [field], "msg": "bad checksum"}]
        )
    return form


def _not_an_address(field: str) -> ValidationFailed:
    return ValidationFailed(
        f"{field} is not an address", errors=[{"loc": [field], "msg": "not an address"}]
    )


@functools.lru_cache(maxsize=4096)
def _eip55(address: str) -> str | None:
    """``address``'s EIP-55 form; None if it is not an address, "" if it fails its checksum.
    Kept for the addresses that recur (merchants, tokens, payers): eth-utils hashes each time."""
    if not is_address(address):
        return None
    # Mixed case is an EIP-55 checksum, there to catch a mistyped address: check it (newer
    # eth-utils' is_address no longer does).
    hex_part = address[2:] if address[:2].lower() == "0x" else address
    mixed = hex_part not in (hex_part.lower(), hex_part.upper())
    if mixed and not is_checksum_address(address):
        return ""
    return to_checksum_address(address)


class Outbox:
    """Writes and reads intents sent from ``sender`` on the chain ``chain_id``.

    ``chain_id`` may be a callable, asked the first time it is needed (it comes from the node).
    """

    def __init__(
        self,
        *,
        sender: str,
        chain_id: int | Callable[[], int],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sender = to_checksum_address(sender)
        self._chain_id = chain_id
        self._clock = clock

    @property
    def chain_id(self) -> int:
        if callable(self._chain_id):
            self._chain_id = self._chain_id()
        return self._chain_id

    def enqueue(
        self,
        session: Session,
        *,
        kind: str,
        owner: str,
        to: str | None,
        value: int = 0,
        data: bytes = b"",
        gas_limit: int | None = None,
        details: dict[str, Any] | None = None,
        reference: str | None = None,
    ) -> OutboxIntent:
        """Record the intent to send a transaction, in ``session``'s transaction."""
        now = self._clock()
        intent = OutboxIntent(
            kind=kind,
            owner=owner,
            reference=reference,
            chain_id=self.chain_id,
            sender=self.sender,
            to_address=None if to is None else checksum(to, "to"),
            value=value,
            data=data,
            gas_limit=gas_limit,
            details=details or {},
            state="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(intent)
        session.flush()
        return intent

    def approve(
        self,
        session: Session,
        *,
        owner: str,
        contract: str,
        spender: str,
        amount_or_id: int,
        purpose: str,
    ) -> OutboxIntent:
        """Enqueue ``approve(spender, amount_or_id)`` on ``contract`` (an ERC-20's amount, or
        an ERC-721's token id) ahead of the ``purpose`` intent that uses it.

        The relayer sends one key's intents in order, and one whose estimate reverts while an
        earlier one is in flight waits for it: the call that spends the approval goes once the
        approval is mined (or fails with its own reason if the approval failed).
        """
        spender = checksum(spender, "spender")
        return self.enqueue(
            session,
            kind=APPROVAL_KIND,
            owner=owner,
            to=contract,
            data=_APPROVE + encode(["address", "uint256"], [spender, amount_or_id]),
            details={
                "contract": checksum(contract, "contract"),
                "spender": spender,
                "amount_or_id": str(amount_or_id),
                "purpose": purpose,
            },
        )

    def exists(
        self,
        session: Session,
        *,
        kind: str,
        states: Iterable[str] = ("pending", "sent"),
        **details: str | int,
    ) -> bool:
        """Whether an intent of ``kind`` on this chain, in one of ``states``, has ``details``
        (e.g. ``vin="..."``): what refuses a second request for the same thing."""
        stmt = (
            sa.select(sa.func.count())
            .select_from(OutboxIntent)
            .where(
                OutboxIntent.kind == kind,
                OutboxIntent.chain_id == self.chain_id,
                OutboxIntent.state.in_(tuple(states)),
            )
        )
        for name, value in details.items():
            field = OutboxIntent.details[name]
            stmt = stmt.where(
                (field.as_integer() if isinstance(value, int) else field.as_string()) == value
            )
        return bool(session.scalar(stmt))

    def get(
        self, session: Session, intent_id: int, *, owner: str | None = None, kind: str | None = None
    ) -> OutboxIntent:
        """One intent; :class:`NotFound` if it does not exist or is not ``owner``'s."""
        intent = session.get(OutboxIntent, intent_id)
        if (
            intent is None
            or (owner is not None and intent.owner != owner)
            or (kind is not None and intent.kind != kind)
        ):
            raise NotFound(f"no {kind or 'intent'} {intent_id}")
        return intent

    def list(
        self,
        session: Session,
        *,
        owner: str | None = None,
        kind: str | None = None,
        state: str | None = None,
        limit: int = 50,
        after: int | None = None,
    ) -> Page[OutboxIntent]:
        """Intents, newest first."""
        stmt = sa.select(OutboxIntent)
        if owner is not None:
            stmt = stmt.where(OutboxIntent.owner == owner)
        if kind is not None:
            stmt = stmt.where(OutboxIntent.kind == kind)
        if state is not None:
            stmt = stmt.where(OutboxIntent.state == state)
        return paginate(session, stmt, OutboxIntent.id, limit=limit, after=after)
