"""Fixtures and helpers shared by the merchant registry and checkout tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3.logs import DISCARD as _DISCARD

from carpay.chain import Chain
from carpay.errors import TransactionReverted
from carpay.settings import DEV_MNEMONIC

CONTRACTS = Path(__file__).resolve().parent

#: Merchant categories, numbered as in merchant_registry.vy.
CATEGORIES = (
    "dealer",
    "insurer",
    "fuel",
    "ev_charging",
    "repair",
    "parking",
    "toll",
    "authority",
    "other",
)
ZERO = "0x" + "00" * 20


@pytest.fixture(scope="session")
def accounts() -> list:
    """The funded dev accounts both peer nodes start with."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(10)
    ]


@pytest.fixture
def chain(node_url: str, tmp_path: Path) -> Chain:
    """A client of each peer node in turn, with its own state directory."""
    return Chain(node_url, state_dir=tmp_path / "state")


def reverts(chain: Chain, sender: Any, fn: Any) -> str | None:
    """The revert reason of sending ``fn`` from ``sender``; fails if it does not revert."""
    try:
        chain.transact(sender, fn)
    except TransactionReverted as exc:
        return exc.reason
    raise AssertionError("the transaction did not revert")


def events(chain: Chain, receipt: Any, contract: Any, name: str) -> list[dict[str, Any]]:
    """The decoded ``name`` events ``contract`` emitted in ``receipt``, as plain dicts."""
    event = getattr(contract.events, name)()
    found = event.process_receipt(receipt, errors=_DISCARD)
    return [dict(e["args"]) for e in found if e["address"] == contract.address]


def latest_timestamp(chain: Chain) -> int:
    """The timestamp of the latest block."""
    return chain.w3.eth.get_block("latest")["timestamp"]


def advance_past(chain: Chain, timestamp: int, sender: Any) -> None:
    """Mine blocks until the latest one is later than ``timestamp``.

    Both peers give each block a timestamp above its parent's, so empty transfers move the
    clock without node-specific RPC methods.
    """
    while latest_timestamp(chain) <= timestamp:
        chain.transact(sender, sender.address, b"", gas=21_000)
