"""The keys the platform itself holds: the relayer's, which pays gas for users, and the
operator's, which owns the merchant registry."""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import SecretStr

from carpay.errors import ConfigError
from carpay.settings import Settings

__all__ = ["OPERATOR_DEV_INDEX", "RELAYER_DEV_INDEX", "operator_account", "relayer_account"]

#: The development account (of the settings' mnemonic) the relayer uses when no key is set.
RELAYER_DEV_INDEX = 9
#: The development account that deploys and owns the contracts when no operator key is set.
OPERATOR_DEV_INDEX = 0


def relayer_account(settings: Settings) -> LocalAccount:
    """The relayer's account: ``settings.relayer_key``, else development account 9."""
    return _account(settings.relayer_key, "CARPAY_RELAYER_KEY", settings, RELAYER_DEV_INDEX)


def operator_account(settings: Settings) -> LocalAccount:
    """The operator's account: ``settings.operator_key``, else development account 0."""
    return _account(settings.operator_key, "CARPAY_OPERATOR_KEY", settings, OPERATOR_DEV_INDEX)


def _account(key: SecretStr | None, name: str, settings: Settings, dev_index: int) -> LocalAccount:
    if key is not None:
        try:
            return Account.from_key(key.get_secret_value())
        except (ValueError, TypeError):
            raise ConfigError(f"{name} is not a valid private key") from None
    Account.enable_unaudited_hdwallet_features()
    path = f"m/44'/60'/0'/0/{dev_index}"
    return Account.from_mnemonic(settings.mnemonic, account_path=path)
