"""Transactions sent from the keys of the merchants the platform holds, for their API owners.

Checkout, traffic fines and insurance take some calls only from the merchant itself (a refund,
a fine issued by its authority, a claim paid by its insurer). :class:`MerchantKeys` gives the
outbox of a merchant's own key (its own relayer sends from it) to the merchant's API owner
only, and only for a merchant whose key the platform holds (:class:`carpay.accounts.Keyring`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import Session

from carpay.accounts.custody import Keyring
from carpay.errors import Conflict, NotAuthorized
from carpay.ledger.models import utcnow
from carpay.ledger.tables import LedgerMerchant
from carpay.services.merchants import owner_of
from carpay.services.outbox import Outbox, checksum
from carpay.services.platform import CATEGORIES

__all__ = ["MerchantKeys"]


class MerchantKeys:
    """The keys of ``keyring``, for the merchants' API owners on ``chain_id``."""

    def __init__(
        self, keyring: Keyring, *, chain_id: int, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.keyring = keyring
        self.chain_id = chain_id
        self._clock = clock

    def key(self, session: Session, owner: str, merchant: str) -> LocalAccount:
        """``merchant``'s key, if ``owner`` speaks for it and the platform holds it."""
        merchant = checksum(merchant, "merchant")
        if owner_of(session, self.chain_id, merchant) != owner:
            raise NotAuthorized(f"merchant {merchant} is not yours")
        key = self.keyring.get(merchant)
        if key is None:
            raise Conflict(
                f"the platform holds no key of merchant {merchant}: "
                "send this transaction from the merchant's own wallet"
            )
        return key

    def outbox(self, session: Session, owner: str, merchant: str) -> Outbox:
        """The outbox of ``merchant``'s own key (see :meth:`key`)."""
        key = self.key(session, owner, merchant)
        return Outbox(sender=key.address, chain_id=self.chain_id, clock=self._clock)

    def require_active(self, session: Session, merchant: str, category: str) -> None:
        """Refuse ``merchant`` unless the ledger shows it an active merchant of ``category``."""
        terms = session.get(LedgerMerchant, (self.chain_id, merchant.lower()))
        if terms is None or not terms.active or CATEGORIES[terms.category] != category:
            raise Conflict(f"{merchant} is not an active {category.replace('_', ' ')}")
