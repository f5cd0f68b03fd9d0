"""Keys the platform holds for participants, so that it can act for them through the API.

Checkout lets only a payment's merchant refund it and only a hold's merchant capture it: such
transactions are signed with the participant's own key. A :class:`Keyring` holds the keys the
platform may sign with for others. On a development network (``carpay up``) those are the
demo merchants' development keys; keys held for real participants (keystores unlocked by the
owner's password and second factor) are not kept yet, so elsewhere the keyring is empty and
participants send such transactions from their own wallets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

__all__ = ["Keyring"]


class Keyring:
    """Signing keys by address."""

    def __init__(self, accounts: Iterable[LocalAccount] = ()) -> None:
        self._keys = {a.address: a for a in accounts}

    def get(self, address: str) -> LocalAccount | None:
        """The key of ``address`` (any case), if the platform holds it."""
        return self._keys.get(to_checksum_address(address))

    def __contains__(self, address: object) -> bool:
        return isinstance(address, str) and self.get(address) is not None

    def __iter__(self) -> Iterator[LocalAccount]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:  # addresses only: never a key
        return f"Keyring({sorted(self._keys)})"
