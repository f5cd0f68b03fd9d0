"""Transactions sent from the keys of the participants the platform holds, for their owners.

Checkout, traffic fines, insurance and the vehicle registry take some calls only from the
participant itself (a refund from the merchant, a fine from its authority, a claim from its
insurer, a title from a registrar). :class:`ParticipantKeys` gives the outbox of a
participant's own key (its own relayer sends from it) to the participant's API owner only
(:mod:`carpay.accounts.participants`), and only for a key the platform holds
(:class:`carpay.accounts.Keyring`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import Session

from carpay.accounts.custody import Keyring
from carpay.accounts.participants import owner_of
from carpay.errors import Conflict, NotAuthorized
from carpay.ledger.models import utcnow
from carpay.ledger.tables import LedgerMerchant
from carpay.services.outbox import Outbox, checksum
from carpay.services.platform import CATEGORIES

__all__ = ["ParticipantKeys"]


class ParticipantKeys:
    """The keys of ``keyring``, for their API owners on ``chain_id``."""

    def __init__(
        self, keyring: Keyring, *, chain_id: int, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.keyring = keyring
        self.chain_id = chain_id
        self._clock = clock

    def key(self, session: Session, owner: str, address: str, field: str) -> LocalAccount:
        """The key of ``address`` (the request's ``field``), if ``owner`` speaks for it and
        the platform holds it."""
        address = checksum(address, field)
        if owner_of(session, self.chain_id, address) != owner:
            raise NotAuthorized(f"{field} {address} is not yours")
        key = self.keyring.get(address)
        if key is None:
            raise Conflict(
                f"the platform holds no key of {field} {address}: "
                f"send this transaction from the {field}'s own wallet"
            )
        return key

    def outbox(self, session: Session, owner: str, address: str, field: str) -> Outbox:
        """The outbox of ``address``'s own key (see :meth:`key`)."""
        key = self.key(session, owner, address, field)
        return Outbox(sender=key.address, chain_id=self.chain_id, clock=self._clock)

    def require_active(self, session: Session, merchant: str, category: str) -> None:
        """Refuse ``merchant`` unless the ledger shows it an active merchant of ``category``."""
        terms = session.get(LedgerMerchant, (self.chain_id, merchant.lower()))
        if terms is None or not terms.active or CATEGORIES[terms.category] != category:
            raise Conflict(f"{merchant} is not an active {category.replace('_', ' ')}")
