"""Fixtures of the contract tests: dev accounts, a client of each node, currency tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3.contract.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from carpay.chain import Chain, CompiledContract, compile_contract, contract
from carpay.chain.node import dev_accounts
from carpay.testing.signing import Domain

CONTRACTS = Path(__file__).resolve().parent

#: What ``Token.mint`` lets the deployer mint in all, the first time it mints.
DEPLOYER_MINT_ALLOWANCE = 10**30


@pytest.fixture(scope="session")
def accounts() -> list[LocalAccount]:
    """The ten funded dev accounts both peer nodes start with (anvil's and Hardhat's keys)."""
    return dev_accounts(count=10)


@pytest.fixture
def chain(node_url: str, tmp_path: Path) -> Chain:
    """A client of each peer node in turn, with its own state directory."""
    return Chain(node_url, state_dir=tmp_path / "state")


@pytest.fixture(scope="session")
def currency_token() -> CompiledContract:
    """carpay's currency token, compiled."""
    return contract("currency_token")


@pytest.fixture(scope="session")
def erc1271_wallet() -> CompiledContract:
    """A contract account whose ERC-1271 ``isValidSignature`` accepts its owner's signatures."""
    return compile_contract(CONTRACTS / "erc1271_wallet.vy")


@dataclass
class Token:
    """A deployed currency token with the account that deployed it (owner, holder of every role)."""

    chain: Chain
    contract: Contract
    deployer: LocalAccount

    @property
    def address(self) -> str:
        return self.contract.address

    @property
    def functions(self) -> Any:
        return self.contract.functions

    def domain(self) -> Domain:
        """The token's EIP-712 domain, as it publishes it (ERC-5267)."""
        return Domain.of(self.contract)

    def call(self, name: str, *args: Any, sender: Any = None) -> Any:
        """The result of the view (or simulated) function ``name``."""
        return self.chain.call(getattr(self.functions, name)(*args), sender=sender)

    def transact(self, sender: LocalAccount, name: str, *args: Any, **kwargs: Any) -> TxReceipt:
        """Send ``name(*args)`` from ``sender`` and return the receipt of the mined transaction."""
        return self.chain.transact(sender, getattr(self.functions, name)(*args), **kwargs)

    def events(self, receipt: TxReceipt, name: str) -> list[dict[str, Any]]:
        """The arguments of every ``name`` event the token emitted in ``receipt``, in order."""
        decoded = getattr(self.contract.events, name)().process_receipt(receipt, errors=DISCARD)
        return [dict(event["args"]) for event in decoded if event["address"] == self.address]

    def balance(self, account: Any) -> int:
        return self.call("balanceOf", getattr(account, "address", account))

    def mint(self, to: Any, amount: int) -> TxReceipt:
        """Mint ``amount`` to ``to`` (an account or an address) as the deployer, who is made a
        minter the first time."""
        if not self.call("isMinter", self.deployer.address):
            self.transact(
                self.deployer, "configureMinter", self.deployer.address, DEPLOYER_MINT_ALLOWANCE
            )
        return self.transact(self.deployer, "mint", getattr(to, "address", to), amount)


@pytest.fixture
def deploy_token(
    chain: Chain, accounts: list[LocalAccount], currency_token: CompiledContract
) -> Callable[..., Token]:
    """A factory of fresh currency tokens on this test's node: ``deploy_token()`` is a euro token
    deployed by ``accounts[0]``; ``deploy_token(deployer, name=..., symbol=..., currency=...)``."""

    def deploy(
        deployer: LocalAccount | None = None,
        name: str = "Euro",
        symbol: str = "EURC",
        currency: str = "EUR",
        version: str = "1",
    ) -> Token:
        deployer = deployer or accounts[0]
        address = chain.deploy(currency_token, name, symbol, currency, version, sender=deployer)
        return Token(chain, chain.contract(currency_token, address), deployer)

    return deploy
