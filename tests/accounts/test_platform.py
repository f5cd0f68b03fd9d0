"""Tests of carpay/accounts/platform.py: the relayer's key."""

from __future__ import annotations

import pytest

from carpay.accounts.platform import relayer_account
from carpay.errors import ConfigError
from carpay.settings import Settings


def test_default_relayer_is_development_account_9():
    # anvil's and Hardhat's account 9 of the test mnemonic.
    assert relayer_account(Settings()).address == "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"


def test_relayer_key_setting_wins():
    key = "0x" + "11" * 32
    account = relayer_account(Settings(relayer_key=key))
    assert account.key.hex().removeprefix("0x") == "11" * 32


def test_bad_relayer_key_is_a_config_error_without_the_key():
    with pytest.raises(ConfigError) as info:
        relayer_account(Settings(relayer_key="0xnot-a-key"))
    assert "not-a-key" not in str(info.value)
