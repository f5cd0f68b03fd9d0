"""Foundry's ``cast`` end to end, on the embedded node and on anvil alike."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak

ROOT = Path(__file__).resolve().parents[3]
PINGED = "Pinged(address indexed,uint256 indexed,string)"


def _cast_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "cast"
    found = str(local) if local.exists() else shutil.which("cast")
    assert found, "cast is missing: run ./test (it installs the npm package @foundry-rs/cast)"
    return found


class Cast:
    """``cast <command> --rpc-url <node> ...``.

    The npm wrapper of cast exits 0 even when cast fails, so success is judged by what
    cast prints: an error goes to stderr as ``Error: ...``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.binary = _cast_binary()
        self.env = dict(os.environ, NO_COLOR="1", FOUNDRY_DISABLE_NIGHTLY_WARNING="1")
        self.env.pop("ETH_RPC_URL", None)

    def run(self, command: str, *args: str) -> subprocess.CompletedProcess:
        argv = [self.binary, command, "--rpc-url", self.url, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=self.env)

    def __call__(self, command: str, *args: str) -> str:
        done = self.run(command, *args)
        assert done.returncode == 0 and "Error" not in done.stderr, (command, args, done.stderr)
        return done.stdout.strip()

    def json(self, command: str, *args: str) -> Any:
        return json.loads(self(command, *args, "--json"))

    def fails(self, command: str, *args: str) -> str:
        """What cast says when the command must fail."""
        done = self.run(command, *args)
        assert "Error" in done.stderr and not done.stdout.strip(), (command, args, done)
        return done.stderr


@pytest.fixture
def cast(rpc) -> Cast:
    return Cast(rpc.url)


def key_of(account: Any) -> str:
    return "0x" + bytes(account.key).hex()


def test_cast_reads_the_chain(cast, rpc, funded):
    assert cast("chain-id") == "1337"
    assert int(cast("block-number")) == rpc.head()
    assert int(cast("balance", funded.address)) == 10 * 10**18
    assert int(cast("nonce", funded.address)) == 0
    block = cast.json("block", "latest")
    assert block["hash"] == rpc("eth_getBlockByNumber", "latest", False)["hash"]


def test_cast_sends_a_value_transfer(cast, rpc, funded):
    recipient = Account.create().address
    receipt = cast.json("send", "--private-key", key_of(funded), recipient, "--value", "12345")
    assert receipt["status"] == "0x1" and receipt["type"] == "0x2"
    assert rpc.balance(recipient) == 12_345
    assert cast("balance", recipient) == "12345"
    tx_hash = receipt["transactionHash"]
    again = cast.json("receipt", tx_hash)
    assert (again["blockHash"], again["gasUsed"]) == (receipt["blockHash"], hex(21_000))
    tx = cast.json("tx", tx_hash)
    assert (tx["value"], tx["nonce"], tx["chainId"]) == (hex(12_345), "0x0", "0x539")
    assert int(cast("nonce", funded.address)) == 1


def test_cast_sends_a_legacy_transfer(cast, rpc, funded):
    recipient = Account.create().address
    receipt = cast.json(
        "send", "--private-key", key_of(funded), "--legacy", recipient, "--value", "7"
    )
    assert (receipt["status"], receipt["type"]) == ("0x1", "0x0")
    assert rpc.balance(recipient) == 7


def test_cast_deploys_calls_and_reads_logs(cast, rpc, funded, tester_build):
    created = cast.json(
        "send", "--private-key", key_of(funded), "--create", tester_build["bytecode"]
    )
    assert created["status"] == "0x1"
    address = created["contractAddress"]
    assert address and created["to"] is None
    assert cast("code", address) == tester_build["bytecode_runtime"]
    assert cast("call", address, "twice(uint256)(uint256)", "21") == "42"

    pinged = cast.json("send", "--private-key", key_of(funded), address, "ping(uint256)", "7")
    assert pinged["status"] == "0x1"
    assert cast("call", address, "pings()(uint256)") == "1"
    logs = cast.json("logs", "--address", address, "--from-block", created["blockNumber"], PINGED)
    assert [log["transactionHash"] for log in logs] == [pinged["transactionHash"]]
    (log,) = logs
    assert log["topics"][0] == "0x" + keccak(text="Pinged(address,uint256,string)").hex()
    assert int(log["topics"][2], 16) == 7
    assert log == pinged["logs"][0]


def test_cast_shows_the_revert_reason(cast, rpc, funded, tester):
    assert "execution reverted: tester: no" in cast.fails("call", tester, "no()")
    said = cast.fails("send", "--private-key", key_of(funded), tester, "no()")
    assert "tester: no" in said
    assert rpc.nonce(funded.address) == 0  # refused at the estimate: nothing was sent
