"""Fixtures of the node tests: a bare JSON-RPC client, funded accounts, a test contract."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import vyper
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from carpay.chain.node import dev_accounts

CHAIN_ID = 1337
GWEI = 10**9

# pings lives in storage slot 0; Pinged(sender, n, note) is what ping() logs.
TESTER_SOURCE = """
# pragma version ~=0.4.3

event Pinged:
    sender: indexed(address)
    n: indexed(uint256)
    note: String[32]

pings: public(uint256)

@external
def ping(n: uint256):
    self.pings += 1
    log Pinged(sender=msg.sender, n=n, note="tester: pinged")

@external
def no():
    raise "tester: no"

@external
@view
def twice(x: uint256) -> uint256:
    return x * 2

interface Tester:
    def ping(n: uint256): nonpayable

@external
def relay(target: address, n: uint256):
    extcall Tester(target).ping(n)
"""


class RpcFailed(AssertionError):
    """The node answered with a JSON-RPC error where a result was expected."""


class Client:
    """A bare JSON-RPC client over HTTP: tests see exactly what the node answers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._ids = iter(range(1, 1 << 62))

    def post(self, body: Any, *, method: str = "POST") -> tuple[int, Any]:
        """POST ``body`` (bytes as they are, anything else as JSON): (status, parsed answer)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url, data, {"Content-Type": "application/json"}, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw

    def request(self, method: str, *params: Any) -> dict[str, Any]:
        """The whole response object of one call."""
        rid = next(self._ids)
        body = {"jsonrpc": "2.0", "id": rid, "method": method, "params": list(params)}
        status, answer = self.post(body)
        assert status == 200, (status, answer)
        assert answer["jsonrpc"] == "2.0" and answer["id"] == rid, answer
        return answer

    def __call__(self, method: str, *params: Any) -> Any:
        answer = self.request(method, *params)
        if "error" in answer:
            raise RpcFailed(f"{method}{list(params)} -> {answer['error']}")
        return answer["result"]

    def error(self, method: str, *params: Any) -> dict[str, Any]:
        """The error a call must fail with."""
        answer = self.request(method, *params)
        assert "error" in answer, f"{method}{list(params)} should fail, got {answer}"
        assert "result" not in answer, answer
        return answer["error"]

    # -- encoding (test modules cannot import this conftest under --import-mode=importlib) --

    @staticmethod
    def selector(signature: str) -> str:
        return "0x" + function_signature_to_4byte_selector(signature).hex()

    @classmethod
    def calldata(cls, signature: str, *words: int) -> str:
        """``signature``'s selector followed by ``words`` as uint256 arguments."""
        return cls.selector(signature) + "".join(w.to_bytes(32, "big").hex() for w in words)

    @staticmethod
    def word(value: int | str) -> str:
        """A 32-byte topic or storage word: an integer, or an address left-padded."""
        if isinstance(value, str):
            value = int(value, 16)
        return "0x" + value.to_bytes(32, "big").hex()

    # -- transactions -------------------------------------------------------------------

    def nonce(self, address: str, tag: str = "pending") -> int:
        return int(self("eth_getTransactionCount", address, tag), 16)

    def balance(self, address: str, tag: str = "latest") -> int:
        return int(self("eth_getBalance", address, tag), 16)

    def head(self) -> int:
        return int(self("eth_blockNumber"), 16)

    @staticmethod
    def sign(account: Any, **fields: Any) -> str:
        """``fields`` over an EIP-1559 transaction's defaults, signed: raw 0x-hex."""
        tx = {
            "type": 2,
            "chainId": CHAIN_ID,
            "gas": 500_000,
            "maxFeePerGas": 10 * GWEI,
            "maxPriorityFeePerGas": GWEI,
            "value": 0,
        }
        tx.update(fields)
        if tx.get("type") == 0 or "gasPrice" in tx:
            tx.pop("maxFeePerGas", None)
            tx.pop("maxPriorityFeePerGas", None)
            tx.pop("type", None)
        return "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()

    def send(self, account: Any, **fields: Any) -> str:
        """Sign and send; the nonce defaults to the sender's pending one. The hash."""
        fields.setdefault("nonce", self.nonce(account.address))
        return self("eth_sendRawTransaction", self.sign(account, **fields))

    def send_error(self, account: Any, **fields: Any) -> dict[str, Any]:
        fields.setdefault("nonce", self.nonce(account.address))
        return self.error("eth_sendRawTransaction", self.sign(account, **fields))

    def wait(self, tx_hash: str, timeout: float = 10.0) -> dict[str, Any]:
        """The receipt of ``tx_hash`` once it is mined."""
        deadline = time.monotonic() + timeout
        while True:
            receipt = self("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                return receipt
            assert time.monotonic() < deadline, f"{tx_hash} was not mined within {timeout}s"
            time.sleep(0.01)

    def transact(self, account: Any, **fields: Any) -> dict[str, Any]:
        """Send and wait: the receipt."""
        return self.wait(self.send(account, **fields))

    def settle(self, seconds: float = 0.3) -> None:
        """Give the node time to mine whatever it is going to mine now."""
        time.sleep(seconds)


@pytest.fixture(scope="session")
def rpc(node_url) -> Client:
    """A client of each node in turn: the test runs on the embedded node and on anvil."""
    return Client(node_url)


@pytest.fixture(scope="session")
def embedded_rpc(embedded) -> Client:
    """A client of the embedded node only: for behaviour where anvil legitimately differs."""
    return Client(embedded.url)


@pytest.fixture(scope="session")
def anvil_rpc(anvil) -> Client:
    return Client(anvil.url)


@pytest.fixture(scope="session")
def bank():
    """The dev account that funds the tests' throwaway accounts (the last one: less used)."""
    return dev_accounts(count=10)[-1]


@pytest.fixture(scope="session")
def fund(bank):
    """``fund(client)``: a fresh account holding 10 ether there, so nobody else's nonces."""

    def fund(client: Client, amount: int = 10 * 10**18) -> Any:
        account = Account.create()
        receipt = client.transact(bank, to=account.address, value=amount, gas=21_000)
        assert receipt["status"] == "0x1", receipt
        return account

    return fund


@pytest.fixture
def funded(rpc, fund):
    """A fresh account holding 10 ether on the node under test."""
    return fund(rpc)


@pytest.fixture(scope="session")
def tester_build() -> dict[str, Any]:
    return vyper.compile_code(TESTER_SOURCE, output_formats=["abi", "bytecode", "bytecode_runtime"])


@pytest.fixture(scope="session")
def deploy_tester(tester_build, bank):
    """``deploy(client)``: the tester's address on that node, deployed once per node."""
    deployed: dict[str, str] = {}

    def deploy(client: Client) -> str:
        if client.url not in deployed:
            receipt = client.transact(bank, data=tester_build["bytecode"], gas=1_000_000)
            assert receipt["status"] == "0x1", receipt
            deployed[client.url] = to_checksum_address(receipt["contractAddress"])
        return deployed[client.url]

    return deploy


@pytest.fixture
def tester(rpc, deploy_tester) -> str:
    """The tester contract's address on the node under test."""
    return deploy_tester(rpc)
