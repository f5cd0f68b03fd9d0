"""Signed ERC-20 transfers over JSON-RPC into the embedded node and into anvil, in one run.

One client submits pre-signed transfers with a fixed number in flight, and follows new blocks
to time each transfer from submission to its receipt. Prints transfers/s and p50/p99
submit-to-receipt latency for both nodes and their ratio, then what py-evm alone mines this
minute (bench/engine_throughput.py's peer: the machine's speed, to compare runs of different
hours with the issue's figures); writes bench/results/node_throughput.json.

    .venv/bin/python bench/node_throughput.py [--transfers 20000] [--in-flight 256]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from eth_abi import encode
from eth_utils import to_checksum_address

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carpay.chain.node import dev_accounts  # noqa: E402
from carpay.testing import Anvil, free_port, wait_for_rpc  # noqa: E402

TOKEN_SOURCE = Path(os.environ.get("BENCH_TOKEN", ROOT / "tests" / "contracts" / "plain_erc20.vy"))
TRANSFER = bytes.fromhex("a9059cbb")


def _compile_token() -> tuple[bytes, list]:
    try:
        from carpay.chain.build import compile_contract
    except ImportError:
        import site

        from vyper.cli.vyper_compile import compile_files

        out = compile_files([TOKEN_SOURCE], ("abi", "bytecode"), paths=site.getsitepackages())
        (token,) = out.values()
        return bytes.fromhex(token["bytecode"][2:]), token["abi"]
    token = compile_contract(TOKEN_SOURCE)
    return token.bytecode, token.abi


class EmbeddedProcess:
    """The embedded node as users run it: ``carpay node`` in its own process."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="carpay-bench-")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "carpay", "node", "--data-dir", self.dir, "--port", str(port)]
        started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        wait_for_rpc(self.url, timeout=60, proc=self.proc)
        self.startup_s = time.perf_counter() - started

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


async def _call(session: aiohttp.ClientSession, url: str, method: str, params: list) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    async with session.post(url, json=body) as r:
        return await r.json(content_type=None)


async def _wait_receipt(session, url: str, tx_hash: str) -> dict:
    while True:
        answer = await _call(session, url, "eth_getTransactionReceipt", [tx_hash])
        if answer.get("result"):
            return answer["result"]
        await asyncio.sleep(0.02)


async def run_node(url: str, transfers: int, in_flight: int) -> dict:
    sender = dev_accounts(count=1)[0]
    bytecode, _abi = _compile_token()
    async with aiohttp.ClientSession() as session:
        chain_id = int((await _call(session, url, "eth_chainId", []))["result"], 16)
        nonce = int(
            (await _call(session, url, "eth_getTransactionCount", [sender.address, "pending"]))[
                "result"
            ],
            16,
        )
        fee = {
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9,
            "chainId": chain_id,
            "type": 2,
        }
        deploy = sender.sign_transaction(
            {"data": bytecode, "gas": 3_000_000, "nonce": nonce, **fee}
        )
        deploy_raw = "0x" + bytes(deploy.raw_transaction).hex()
        answer = await _call(session, url, "eth_sendRawTransaction", [deploy_raw])
        receipt = await _wait_receipt(session, url, answer["result"])
        token = to_checksum_address(receipt["contractAddress"])
        recipients = [os.urandom(20) for _ in range(1000)]
        raws = []
        for i in range(transfers):
            data = TRANSFER + encode(["address", "uint256"], [recipients[i % 1000], 1 + i % 7])
            tx = sender.sign_transaction(
                {"to": token, "data": data, "gas": 100_000, "nonce": nonce + 1 + i, **fee}
            )
            raws.append(("0x" + bytes(tx.raw_transaction).hex(), "0x" + bytes(tx.hash).hex()))

        submitted: dict[str, float] = {}
        mined: dict[str, float] = {}
        queue: asyncio.Queue = asyncio.Queue()
        for item in raws:
            queue.put_nowait(item)
        errors: list = []
        # At most `in_flight` transfers submitted and not yet mined: what a pipelining client
        # does, and it keeps either node's pool from growing without bound.
        window = asyncio.Semaphore(in_flight)

        async def submitter() -> None:
            while not queue.empty():
                raw, tx_hash = queue.get_nowait()
                await window.acquire()
                submitted[tx_hash] = time.perf_counter()
                answer = await _call(session, url, "eth_sendRawTransaction", [raw])
                if "error" in answer:
                    errors.append(answer["error"])

        async def follower() -> None:
            # The sender's mined nonce says which transfers have receipts: one cheap call per
            # poll whatever the number of blocks (anvil makes one per transaction).
            done = 0
            while done < transfers and not errors:
                answer = await _call(
                    session, url, "eth_getTransactionCount", [sender.address, "latest"]
                )
                now = time.perf_counter()
                mined_nonce = int(answer["result"], 16) - (nonce + 1)
                for i in range(done, min(mined_nonce, transfers)):
                    mined[raws[i][1]] = now
                    window.release()
                done = max(done, mined_nonce)
                await asyncio.sleep(0.005)

        began = time.perf_counter()
        follow = asyncio.create_task(follower())
        await asyncio.gather(*(submitter() for _ in range(min(in_flight, 64))))
        await follow
        elapsed = max(mined.values()) - began
        if errors:
            raise RuntimeError(f"the node refused transfers: {errors[:3]}")
        last = raws[-1][1]
        receipt = await _wait_receipt(session, url, last)
        assert receipt["status"] == "0x1", receipt
        latencies = sorted((mined[h] - submitted[h]) * 1000 for _, h in raws)
        # A node whose rate falls as its chain grows shows it here, not only in the average.
        segment = max(1, transfers // 10)
        times = [mined[h] for _, h in raws]
        first = segment / (times[segment - 1] - began)
        last = segment / (times[-1] - times[-segment - 1]) if transfers > segment else first
    return {
        "transfers": transfers,
        "seconds": round(elapsed, 3),
        "transfers_per_s": round(transfers / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
        "first_tenth_per_s": round(first, 1),
        "last_tenth_per_s": round(last, 1),
        "gas_per_transfer": int(receipt["gasUsed"], 16),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=20_000)
    parser.add_argument(
        "--in-flight", type=int, default=256, help="most transfers submitted and not yet mined"
    )
    parser.add_argument(
        "--calibration", type=int, default=2_000, help="transfers py-evm alone mines after"
    )
    args = parser.parse_args()

    results = {}
    embedded = EmbeddedProcess()
    try:
        results["embedded"] = asyncio.run(run_node(embedded.url, args.transfers, args.in_flight))
        results["embedded"]["startup_s"] = round(embedded.startup_s, 2)
    finally:
        embedded.stop()
    with Anvil() as anvil:
        results["anvil"] = asyncio.run(run_node(anvil.url, args.transfers, args.in_flight))
    ratio = results["embedded"]["transfers_per_s"] / results["anvil"]["transfers_per_s"]
    from engine_throughput import calibrate

    py_evm = calibrate(args.calibration)

    print(f"\nERC-20 transfers over JSON-RPC, one client, at most {args.in_flight} unmined")
    print(
        f"{'node':<10}{'transfers':>10}{'tx/s':>9}{'first 10%':>11}{'last 10%':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'gas':>7}"
    )
    for name, r in results.items():
        print(
            f"{name:<10}{r['transfers']:>10}{r['transfers_per_s']:>9}"
            f"{r['first_tenth_per_s']:>11}{r['last_tenth_per_s']:>10}"
            f"{r['p50_ms']:>9}{r['p99_ms']:>9}{r['gas_per_transfer']:>7}"
        )
    print(f"embedded / anvil throughput ratio: {ratio:.2f}")
    print(f"embedded node startup: {results['embedded']['startup_s']} s")
    print(
        f"py-evm alone, blocks of 100, this minute: {py_evm['transfers_per_s']} transfers/s "
        "(the issue's planning figure: about 590)"
    )

    write_results(
        "node_throughput",
        in_flight=args.in_flight,
        results=results,
        ratio_embedded_to_anvil=round(ratio, 2),
        py_evm_alone=py_evm,
    )


def write_results(name: str, **fields: object) -> None:
    """bench/results/<name>.json: when and on what the run was, then ``fields``."""
    out = ROOT / "bench" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    run = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    out.write_text(json.dumps({**run, **fields}, indent=2) + "\n")
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
