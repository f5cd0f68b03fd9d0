"""Fixtures of the chain client tests: funded dev accounts, a client per test, test contracts."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from carpay.chain import Chain, CompiledContract, compile_contract
from carpay.settings import DEV_MNEMONIC

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"


@pytest.fixture(scope="session")
def accounts() -> list:
    """The funded dev accounts both peer nodes start with (anvil's and Hardhat's keys)."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(6)
    ]


@pytest.fixture
def chain(node_url: str, tmp_path: Path) -> Chain:
    """A client of each peer node in turn, with its own state directory."""
    return Chain(node_url, state_dir=tmp_path / "state")


@pytest.fixture(scope="session")
def plain_erc20() -> CompiledContract:
    """The plain 6-decimal ERC-20 that mints its whole supply to the deployer."""
    return compile_contract(CONTRACTS / "plain_erc20.vy")


@pytest.fixture(scope="session")
def reverter() -> CompiledContract:
    """A contract that reverts on purpose, with a reason, a panic, or nothing."""
    return compile_contract(CONTRACTS / "reverter.vy")
