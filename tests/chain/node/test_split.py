"""The node on two processes: the engine goes with the serving process, and the other way
round; what the engine says reaches the caller; the journal keeps what is not yet mined."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from eth_utils import keccak

from carpay.chain.node import dev_accounts
from carpay.chain.node.journal import Journal, JournalWriter
from carpay.chain.node.split import SplitNode
from carpay.errors import NodeError
from carpay.testing import free_port, wait_for_rpc


def _children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(c) for c in f.read().split()]
    return found


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(")")[1].split()[0] == "Z":  # exited, not yet reaped
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def _carpay_node(data_dir) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "carpay", "node", "--data-dir", str(data_dir), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_for_rpc(url, timeout=60, proc=proc)
    return proc, url


def test_the_engine_goes_when_the_serving_process_is_killed(tmp_path):
    proc, _url = _carpay_node(tmp_path)
    (engine,) = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _gone(engine, 10), "the engine outlived the process that served it"
    node = SplitNode(tmp_path, port=0)  # and it let go of the data directory
    node.open()
    try:
        assert node.head_number == 0
    finally:
        node.close()


def test_a_node_whose_engine_dies_stops_with_one_line(tmp_path):
    proc, _url = _carpay_node(tmp_path)
    (engine,) = _children(proc.pid)
    os.kill(engine, signal.SIGKILL)
    try:
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == (
        "carpay: the node's engine process ended unexpectedly; its log is above"
    ), err


def test_what_the_engine_refuses_at_start_reaches_the_caller(tmp_path):
    first = SplitNode(tmp_path, port=0, chain_id=1337)
    first.open()
    try:
        with pytest.raises(NodeError, match="another node is using"):
            SplitNode(tmp_path, port=0).open()
    finally:
        first.close()
    with pytest.raises(NodeError, match="holds chain id 1337, not 5"):
        SplitNode(tmp_path, port=0, chain_id=5).open()


def test_the_journal_drops_what_is_settled_and_keeps_the_rest(tmp_path):
    records = [os.urandom(100 + i) for i in range(60)]
    settled = {keccak(r) for r in records[::2]}  # every other one: mined
    writer = JournalWriter(Journal(tmp_path / "journal"), settled.__contains__, compact_bytes=2_000)
    for record in records:
        writer.append(record).result(timeout=10)
    writer.close()
    kept = list(Journal(tmp_path / "journal").replay())
    unsettled = [r for r in records if keccak(r) not in settled]
    # compacted on the way (60 records of 100+ bytes are over 2,000 bytes many times over)...
    assert len(kept) < len(records)
    # ...and never losing one that is not mined, in the order they came
    assert [r for r in kept if keccak(r) not in settled] == unsettled


class _Unpicklable:
    """A decoded transaction that pickle refuses (a type pickle cannot rebuild)."""

    def __init__(self, tx) -> None:
        self.sender = tx.sender
        self.hash = tx.hash

    def __reduce__(self):
        raise TypeError("this transaction does not pickle")


def test_a_transaction_that_does_not_pickle_is_sent_raw_and_pooled(tmp_path):
    """The engine gets a submitted transaction decoded; one that cannot be sent so is sent as
    its raw bytes, with the rest of its batch, and the engine decodes it itself."""
    node = SplitNode(tmp_path, port=0)
    node.open()
    try:
        account = dev_accounts(count=1)[0]
        sender = bytes.fromhex(account.address[2:])
        raws = [
            bytes(
                account.sign_transaction(
                    {
                        "to": "0x" + "11" * 20,
                        "value": 1,
                        "gas": 21_000,
                        "gasPrice": 10**10,
                        "nonce": nonce,
                        "chainId": 1337,
                    }
                ).raw_transaction
            )
            for nonce in range(3)
        ]
        decode = node._decode
        node._decode = lambda raw: _Unpicklable(decode(raw)) if raw == raws[1] else decode(raw)

        async def submit_all():
            return await asyncio.gather(*(node.ask("submit", raw) for raw in raws))

        hashes = asyncio.run(submit_all())
        assert hashes == [keccak(raw) for raw in raws]
        deadline = time.monotonic() + 10
        while node.head_number == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert asyncio.run(node.ask("pending_nonce", sender)) == 3
    finally:
        node.close()
