"""The embedded node's engine alone: signed ERC-20 transfers pooled and mined in one process.

What `carpay node`'s engine process does for each transfer (pool it, execute it in a block,
persist and index the block in LMDB), without JSON-RPC, the journal or a client: the CPU it
costs per transfer, at a given block size. The transfers are signed first, their senders
recovered and their hashes taken, as the node's JSON-RPC process does. The peer, in the same
run: py-evm's own MiningChain mining the same transfers in blocks of the same size, state in
memory (the issue's planning figure, about 590 transfers/s in blocks of 100, is this one): the
ratio says what the engine gains over py-evm whatever the machine's speed that minute. Prints
a table and writes bench/results/engine_throughput.json.

    .venv/bin/python bench/engine_throughput.py [--transfers 10000] [--block 200]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from eth_abi import encode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from node_throughput import TRANSFER, _compile_token, write_results  # noqa: E402

from carpay.chain.node import Node, dev_accounts  # noqa: E402
from carpay.chain.node.engine import decode_transaction  # noqa: E402


def _signed(transfers: int) -> tuple[list[bytes], list]:
    """The token's deployment, then ``transfers`` transfers to 1,000 recipients, decoded."""
    from eth._utils.address import generate_contract_address
    from eth_utils import to_checksum_address

    sender = dev_accounts(count=1)[0]
    bytecode, _abi = _compile_token()
    fee = {"maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "chainId": 1337, "type": 2}
    deploy = sender.sign_transaction({"data": bytecode, "gas": 3_000_000, "nonce": 0, **fee})
    token = to_checksum_address(generate_contract_address(bytes.fromhex(sender.address[2:]), 0))
    rng = random.Random(1)
    recipients = [rng.randbytes(20) for _ in range(1000)]
    raws = [bytes(deploy.raw_transaction)]
    for i in range(transfers):
        data = TRANSFER + encode(["address", "uint256"], [recipients[i % 1000], 1 + i % 7])
        tx = sender.sign_transaction(
            {"to": token, "data": data, "gas": 100_000, "nonce": 1 + i, **fee}
        )
        raws.append(bytes(tx.raw_transaction))
    txs = []
    for raw in raws:
        tx = decode_transaction(raw)
        tx.hash  # noqa: B018 (kept on the transaction, as the JSON-RPC process does)
        txs.append(tx)
    return raws, txs


def _result(transfers: int, block: int, blocks: int, cpu: float, wall: float) -> dict:
    return {
        "transfers": transfers,
        "block": block,
        "blocks": blocks,
        "cpu_ms_per_transfer": round(cpu / transfers * 1000, 3),
        "transfers_per_s": round(transfers / wall, 1),
    }


def run(raws: list[bytes], txs: list, block: int) -> dict:
    """The engine on the signed ``raws`` (the deployment, then the transfers) and their
    decoded ``txs``, ``block`` transfers a block."""
    transfers = len(raws) - 1
    data_dir = tempfile.mkdtemp(prefix="carpay-engine-bench-")
    node = Node(data_dir, port=0, writes_journal=False, accounts=1)
    node.open()
    sender = txs[0].sender

    def work() -> tuple[float, float, int]:
        # On the node's worker thread, as its operations run: nothing else mines meanwhile.
        node.submit(raws[0], txs[0])
        first = node.mine()
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(1, len(raws), block):
            for raw, tx in zip(
                raws[start : start + block], txs[start : start + block], strict=True
            ):
                node.submit(raw, tx)
            last = node.mine()
        elapsed = time.process_time() - cpu, time.perf_counter() - wall
        assert node.engine.account(sender)[0] == len(raws), "a transfer was not mined"
        return *elapsed, last - first

    try:
        cpu, wall, blocks = node.run(work).result()
    finally:
        node.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    return _result(transfers, block, blocks, cpu, wall)


def run_py_evm(raws: list[bytes], block: int) -> dict:
    """The peer: py-evm's own MiningChain (PragueVM, coincurve, state in memory) mining the
    same signed transfers with ``mine_all``, ``block`` at a time, as the issue measured it.
    Its senders are recovered by py-evm as it validates and executes them."""
    from eth.chains.base import MiningChain
    from eth.db.atomic import AtomicDB
    from eth.vm.forks import PragueVM

    sender = bytes.fromhex(dev_accounts(count=1)[0].address[2:])
    chain = MiningChain.configure(vm_configuration=((0, PragueVM),), chain_id=1337).from_genesis(
        AtomicDB(),
        {
            "difficulty": 0,
            "gas_limit": 30_000_000,
            "timestamp": int(time.time()),
            "base_fee_per_gas": 10**9,
        },
        {sender: {"balance": 10**24, "nonce": 0, "code": b"", "storage": {}}},
    )
    builder = PragueVM.get_transaction_builder()
    txs = [builder.decode(raw) for raw in raws]
    chain.mine_all(txs[:1])
    cpu, wall = time.process_time(), time.perf_counter()
    blocks = 0
    for start in range(1, len(txs), block):
        chain.mine_all(txs[start : start + block])
        blocks += 1
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert chain.get_vm().state.get_nonce(sender) == len(raws), "a transfer was not mined"
    return _result(len(raws) - 1, block, blocks, cpu, wall)


def calibrate(transfers: int = 2_000) -> dict:
    """How fast the machine is this minute: py-evm alone on ``transfers`` transfers in blocks
    of 100, as the issue's planning figure (about 590 transfers/s) was measured."""
    return run_py_evm(_signed(transfers)[0], 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=10_000)
    parser.add_argument("--block", type=int, default=200, help="transfers per block")
    args = parser.parse_args()
    raws, txs = _signed(args.transfers)
    engine = run(raws, txs, args.block)
    peer = run_py_evm(raws, args.block)
    ratio = round(peer["cpu_ms_per_transfer"] / engine["cpu_ms_per_transfer"], 2)
    print(f"\nERC-20 transfers pooled and mined in one process, blocks of {args.block}")
    print(f"{'':10}{'transfers':>10}{'blocks':>8}{'CPU ms/transfer':>17}{'transfers/s':>13}")
    for name, result in (("engine", engine), ("py-evm", peer)):
        print(
            f"{name:10}{result['transfers']:>10}{result['blocks']:>8}"
            f"{result['cpu_ms_per_transfer']:>17}{result['transfers_per_s']:>13}"
        )
    print(f"engine / py-evm speed (CPU a transfer): {ratio}")
    write_results("engine_throughput", results={"engine": engine, "py_evm": peer, "ratio": ratio})


if __name__ == "__main__":
    main()
