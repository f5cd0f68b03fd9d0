"""The keys the platform itself holds: the relayer's, which pays gas for users."""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount

from carpay.errors import ConfigError
from carpay.settings import Settings

__all__ = ["RELAYER_DEV_INDEX", "relayer_account"]

#: The development account (of the settings' mnemonic) the relayer uses when no key is set.
RELAYER_DEV_INDEX = 9


def relayer_account(settings: Settings) -> LocalAccount:
    """The relayer's account: ``settings.relayer_key``, else development account 9."""
    if settings.relayer_key is not None:
        try:
            return Account.from_key(settings.relayer_key.get_secret_value())
        except (ValueError, TypeError):
            raise ConfigError("CARPAY_RELAYER_KEY is not a valid private key") from None
    Account.enable_unaudited_hdwallet_features()
    path = f"m/44'/60'/0'/0/{RELAYER_DEV_INDEX}"
    return Account.from_mnemonic(settings.mnemonic, account_path=path)
