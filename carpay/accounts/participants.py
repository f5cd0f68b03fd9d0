"""Which API owner speaks for which participant of the ledger (a merchant, a registrar).

An owner's API keys act for the addresses linked to it (a merchant's refunds, an OEM's
titles) and its webhooks hear of what happens to them. One owner may hold several addresses
(a fuel chain's stations); an address has one owner per chain.
"""

from __future__ import annotations

import sqlalchemy as sa
from eth_utils import is_address, to_checksum_address
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carpay.errors import Conflict, ValidationFailed
from carpay.ledger.models import ParticipantAccount

__all__ = ["addresses_of", "link", "owner_of"]


def _address(address: str) -> str:
    if not isinstance(address, str) or not is_address(address):
        raise ValidationFailed(
            "not an address", errors=[{"loc": ["address"], "msg": "not an address"}]
        )
    return to_checksum_address(address)


def link(session: Session, *, owner: str, chain_id: int, address: str) -> ParticipantAccount:
    """Make ``owner`` the API owner of ``address``; :class:`Conflict` if it has one."""
    address = _address(address)
    if not owner or len(owner) > 100:
        raise ValidationFailed(
            "owner must be 1 to 100 characters", errors=[{"loc": ["owner"], "msg": "length"}]
        )
    account = ParticipantAccount(owner=owner, chain_id=chain_id, address=address)
    try:
        with session.begin_nested():
            session.add(account)
            session.flush()
    except IntegrityError:
        raise Conflict(f"{address} belongs to an owner already") from None
    return account


def owner_of(session: Session, chain_id: int, address: str) -> str | None:
    """The API owner of ``address`` (any case) on ``chain_id``, if it has one."""
    return session.scalar(
        sa.select(ParticipantAccount.owner).where(
            ParticipantAccount.chain_id == chain_id,
            ParticipantAccount.address == _address(address),
        )
    )


def addresses_of(session: Session, chain_id: int, owner: str) -> list[str]:
    """The addresses ``owner`` speaks for on ``chain_id``, oldest first."""
    return list(
        session.scalars(
            sa.select(ParticipantAccount.address)
            .where(ParticipantAccount.chain_id == chain_id, ParticipantAccount.owner == owner)
            .order_by(ParticipantAccount.id)
        )
    )
