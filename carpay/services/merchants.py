"""Onboarding merchants: registered on chain by the operator, linked to the API owner they are.

:meth:`Merchants.onboard` checks a new merchant's terms, links its address to the API owner
whose keys and webhooks speak for it, and writes the registry's ``registerMerchant`` to the
operator's outbox, all in the caller's transaction: the operator's relayer sends it exactly
once (``merchant.succeeded`` or ``merchant.failed`` follows). A merchant registered on chain
some other way (the demo data, a migration) is only linked (:mod:`carpay.accounts.participants`).
"""

from __future__ import annotations

from typing import Any

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector
from sqlalchemy.orm import Session

from carpay.accounts import participants
from carpay.errors import Conflict, ValidationFailed
from carpay.ledger.models import OutboxIntent
from carpay.ledger.tables import LedgerMerchant
from carpay.services.outbox import Outbox, checksum
from carpay.services.platform import CATEGORIES

__all__ = ["KIND", "MAX_FEE_BPS", "Merchants"]

#: The outbox ``kind`` of an onboarding; its events are ``merchant.succeeded`` and ``.failed``.
KIND = "merchant"
#: The highest fee tier the registry accepts, in basis points (10%).
MAX_FEE_BPS = 1_000
_REGISTER = function_signature_to_4byte_selector("registerMerchant(address,uint8,address,uint16)")


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"loc": [field], "msg": message}])


class Merchants:
    """Onboards merchants on the registry at ``registry`` through ``outbox`` (the operator's)."""

    def __init__(self, outbox: Outbox, registry: str) -> None:
        self.outbox = outbox
        self.registry = checksum(registry, "registry")

    def onboard(
        self,
        session: Session,
        *,
        requested_by: str,
        owner: str,
        merchant: str,
        category: str,
        payout: str,
        fee_bps: int,
        reference: str | None = None,
    ) -> OutboxIntent:
        """Register ``merchant`` for ``owner``; :class:`Conflict` if it is known already."""
        merchant = checksum(merchant, "merchant")
        payout = checksum(payout, "payout")
        if category not in CATEGORIES:
            raise _invalid("category", f"category must be one of {', '.join(CATEGORIES)}")
        if not 0 <= fee_bps <= MAX_FEE_BPS:
            raise _invalid("fee_bps", f"fee_bps must be from 0 to {MAX_FEE_BPS}")
        registered = session.get(LedgerMerchant, (self.outbox.chain_id, merchant.lower()))
        if registered is not None:
            raise Conflict(f"merchant {merchant} is registered already")
        if self.outbox.exists(session, kind=KIND, merchant=merchant):
            raise Conflict(f"merchant {merchant} is being onboarded already")
        # A failed onboarding left the link: the same owner may try again.
        if participants.owner_of(session, self.outbox.chain_id, merchant) != owner:
            participants.link(session, owner=owner, chain_id=self.outbox.chain_id, address=merchant)
        details: dict[str, Any] = {
            "merchant": merchant,
            "owner": owner,
            "category": category,
            "payout": payout,
            "fee_bps": fee_bps,
        }
        data = _REGISTER + encode(
            ["address", "uint8", "address", "uint16"],
            [merchant, CATEGORIES.index(category), payout, fee_bps],
        )
        return self.outbox.enqueue(
            session,
            kind=KIND,
            owner=requested_by,
            to=self.registry,
            data=data,
            details=details,
            reference=reference,
        )
