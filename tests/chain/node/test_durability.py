"""Nothing the node acknowledged is lost: kill -9 during a stream of transfers, five times."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from carpay.chain.node import dev_accounts
from carpay.testing import free_port, wait_for_rpc

RESTARTS = 5
TRANSFERS = 400


def _rpc(url: str, method: str, params: list) -> dict:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


class _NodeProcess:
    def __init__(self, data_dir) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        cmd = [
            sys.executable,
            "-m",
            "carpay.cli",
            "node",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(port),
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_rpc(self.url, timeout=60, proc=self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def test_no_acknowledged_transaction_is_lost_across_kill_9(tmp_path):
    sender, recipient = dev_accounts(count=2)
    signed = [
        sender.sign_transaction(
            {
                "to": recipient.address,
                "value": 1_000 + i,
                "gas": 21_000,
                "nonce": i,
                "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 10**9,
                "chainId": 1337,
                "type": 2,
            }
        )
        for i in range(TRANSFERS)
    ]
    node = _NodeProcess(tmp_path / "chain")
    node.start()
    acknowledged: dict[str, int] = {}
    done = threading.Event()

    def stream() -> None:
        i = 0
        while i < TRANSFERS:
            raw = "0x" + bytes(signed[i].raw_transaction).hex()
            try:
                answer = _rpc(node.url, "eth_sendRawTransaction", [raw])
            except OSError:
                time.sleep(0.05)  # the node is down: send the same transaction again
                continue
            if "result" in answer:
                acknowledged[answer["result"]] = i
            else:
                # journaled but unanswered before a crash: the node knows it already
                assert "already known" in answer["error"]["message"], answer
                acknowledged["0x" + bytes(signed[i].hash).hex()] = i
            i += 1
        done.set()

    client = threading.Thread(target=stream)
    client.start()
    rng = random.Random(7)
    kills_mid_stream = 0
    for _ in range(RESTARTS):
        time.sleep(rng.uniform(0.2, 0.6))
        if done.is_set():
            break
        node.kill()
        kills_mid_stream += 1
        node.start()
    client.join(120)
    assert done.is_set(), "the client did not finish its stream"
    assert kills_mid_stream == RESTARTS, "the stream ended before every forced restart"
    node.kill()
    node.start()  # one more cold start: everything must come back from disk
    try:
        deadline = time.monotonic() + 60
        missing = set(acknowledged)
        while missing and time.monotonic() < deadline:
            missing = {
                h
                for h in missing
                if _rpc(node.url, "eth_getTransactionReceipt", [h]).get("result") is None
            }
            time.sleep(0.1)
        assert not missing, f"{len(missing)} acknowledged transactions were lost"
        assert len(acknowledged) == TRANSFERS
        nonce = _rpc(node.url, "eth_getTransactionCount", [sender.address, "latest"])["result"]
        assert int(nonce, 16) == TRANSFERS
        balance = _rpc(node.url, "eth_getBalance", [recipient.address, "latest"])["result"]
        expected = 10_000 * 10**18 + sum(1_000 + i for i in range(TRANSFERS))
        assert int(balance, 16) == expected  # every transfer applied exactly once
    finally:
        node.kill()
