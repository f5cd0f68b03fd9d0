"""The embedded node: a py-evm chain on disk behind standard Ethereum JSON-RPC."""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_account import Account

from carpay.chain.node.engine import BlockResult, Engine
from carpay.chain.node.journal import Journal
from carpay.chain.node.pool import Pool, Rejected
from carpay.chain.node.store import Store
from carpay.errors import NodeError
from carpay.settings import DEV_MNEMONIC

__all__ = ["Node", "dev_accounts"]

log = logging.getLogger("carpay.node")

DEV_BALANCE = 10_000 * 10**18
MAX_TXS_PER_BLOCK = 2_000
JOURNAL_COMPACT_BYTES = 4 << 20


def dev_accounts(mnemonic: str = DEV_MNEMONIC, count: int = 10) -> list[Any]:
    """The accounts m/44'/60'/0'/0/i of ``mnemonic``, as anvil and Hardhat derive them."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{i}") for i in range(count)
    ]


class Node:
    """A single-machine EVM node that any Ethereum tool can use.

    Transactions are acknowledged only once they are in the fsynced journal, mined as soon as
    they arrive (those arriving together share a block), and every block is committed to LMDB
    atomically. ``start()`` serves JSON-RPC over HTTP and WebSocket on ``host:port`` (port 0
    picks a free one) from a background thread; ``serve_forever()`` does it in the caller's.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        chain_id: int = 1337,
        host: str = "127.0.0.1",
        port: int = 8545,
        block_time: float | None = None,
        mnemonic: str | None = DEV_MNEMONIC,
        accounts: int = 10,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.chain_id = chain_id
        self.host = host
        self.port = port
        self.block_time = block_time
        self.accounts = dev_accounts(mnemonic, accounts) if mnemonic else []
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="node-worker")
        self._journal_lock = threading.Condition()
        self._journal_waiting: list[tuple[bytes, concurrent.futures.Future]] = []
        self._listeners: list[Callable[[BlockResult], None]] = []
        self._mine_scheduled = False
        self._closed = False
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.engine: Engine | None = None
        self.store: Store | None = None
        self.pool = Pool()
        self.head_number = 0

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def open(self) -> None:
        """Open the data directory, create genesis if new, replay the journal."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._worker.submit(self._open).result()
        threading.Thread(target=self._journal_loop, name="node-journal", daemon=True).start()
        if self.block_time:
            threading.Thread(target=self._interval_loop, name="node-clock", daemon=True).start()

    def _open(self) -> None:
        self._lock_file = open(self.data_dir / "LOCK", "a+b")  # noqa: SIM115 (held while open)
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise NodeError(f"another node is using the data directory {self.data_dir}") from None
        try:
            self._load()
        except BaseException:
            if self.store is not None:
                self.store.close()
                self.store = None
            self._lock_file.close()
            raise

    def _load(self) -> None:
        try:
            self.store = Store(self.data_dir / "db")
        except Exception as exc:  # lmdb.Error: unreadable or not an LMDB environment
            raise NodeError(f"cannot open the node's data in {self.data_dir}: {exc}") from exc
        alloc = {bytes.fromhex(a.address[2:]): DEV_BALANCE for a in self.accounts}
        self.engine = Engine(self.store, self.chain_id, alloc)
        self.head_number = self.engine.head.block_number
        self.journal = Journal(self.data_dir / "journal")
        replayed = 0
        for raw in list(self.journal.replay()):
            try:
                tx = self.engine.decode_transaction(raw)
            except Exception:
                continue
            if self.is_known(tx.hash):
                continue
            try:
                self._admit(tx, raw)
                replayed += 1
            except Rejected:
                continue
        self.journal.rewrite([self.pool.raw[h] for h in self._pool_order()])
        if replayed:
            log.info("replayed %d journaled transactions", replayed)
            while self.pool.ready:
                self._mine_once()

    def _pool_order(self) -> list[bytes]:
        order = [tx.hash for tx in self.pool.ready.values()]
        order += [tx.hash for q in self.pool.queued.values() for tx in q.values()]
        return order

    def start(self) -> Node:
        """Open the node and serve JSON-RPC from a background thread; returns when serving."""
        from carpay.chain.node.server import serve

        self.open()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(serve(self, ready))
            except BaseException as exc:  # reported to the caller of start()
                failure.append(exc)
                ready.set()

        self._thread = threading.Thread(target=run, name="node-rpc", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self.close()
            raise NodeError(f"the node could not serve on {self.host}:{self.port}: {failure[0]}")
        return self

    def serve_forever(self) -> None:
        """Open the node and serve JSON-RPC in this thread until interrupted."""
        from carpay.chain.node.server import serve

        self.open()
        try:
            asyncio.run(serve(self, threading.Event()))
        finally:
            self.close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._thread is not None:
            self._thread.join(10)
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._journal_lock:
            self._journal_lock.notify_all()
        self._worker.submit(self._close).result()
        self._worker.shutdown()

    def _close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.journal.close()
            self._lock_file.close()

    # -- the worker ---------------------------------------------------------------------

    def run(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        """Run ``fn(*args)`` on the worker thread, the only one that touches the engine."""
        return self._worker.submit(fn, *args)

    def on_block(self, listener: Callable[[BlockResult], None]) -> None:
        """Call ``listener(result)`` on the worker thread after every committed block."""
        self._listeners.append(listener)

    def is_known(self, tx_hash: bytes) -> bool:
        assert self.store is not None
        index = self.store.index
        return (
            self.store.get_committed(index, b"t" + tx_hash) is not None
            or self.store.get_committed(index, b"d" + tx_hash) is not None
        )

    def submit(self, raw: bytes) -> bytes:
        """Validate and pool a raw transaction (worker thread); returns its hash."""
        assert self.engine is not None
        try:
            tx = self.engine.decode_transaction(raw)
        except Exception as exc:
            raise Rejected(f"invalid transaction: {exc}") from exc
        if tx.hash in self.pool or self.is_known(tx.hash):
            raise Rejected("already known")
        self._check(tx)
        if self._admit(tx, raw) and not self._mine_scheduled and not self.block_time:
            self._mine_scheduled = True
            self._worker.submit(self._mine_ready)
        return tx.hash

    def _check(self, tx: Any) -> None:
        assert self.engine is not None
        chain_id = getattr(tx, "chain_id", None)
        if chain_id is not None and chain_id != self.chain_id:
            raise Rejected(f"invalid chain id {chain_id}: this chain is {self.chain_id}")
        head = self.engine.head
        if tx.gas > head.gas_limit:
            raise Rejected("exceeds block gas limit")
        if tx.gas < tx.intrinsic_gas:
            raise Rejected(f"intrinsic gas too low: have {tx.gas}, want {tx.intrinsic_gas}")
        max_fee = getattr(tx, "max_fee_per_gas", None)
        max_fee = tx.gas_price if max_fee is None else max_fee
        base_fee = self.engine.next_base_fee()
        if max_fee < base_fee:
            raise Rejected(
                f"max fee per gas less than block base fee: maxFeePerGas {max_fee}, "
                f"baseFee {base_fee}"
            )
        _nonce, balance = self.engine.account(tx.sender)
        cost = tx.gas * max_fee + tx.value
        if cost > balance:
            raise Rejected(
                f"insufficient funds for gas * price + value: balance {balance}, "
                f"tx cost {cost}, overshot {cost - balance}"
            )

    def _admit(self, tx: Any, raw: bytes) -> bool:
        assert self.engine is not None
        nonce, _balance = self.engine.account(tx.sender)
        return self.pool.admit(tx, raw, nonce)

    def pending_nonce(self, sender: bytes) -> int:
        assert self.engine is not None
        nonce, _ = self.engine.account(sender)
        return self.pool.pending_nonce(sender, nonce)

    def _mine_ready(self) -> None:
        self._mine_scheduled = False
        if self.pool.ready:
            self._mine_once()
        if self.pool.ready and not self._mine_scheduled:
            self._mine_scheduled = True
            self._worker.submit(self._mine_ready)

    def _mine_once(self) -> BlockResult:
        assert self.engine is not None and self.store is not None
        txs = self.pool.take(MAX_TXS_PER_BLOCK)
        try:
            result = self.engine.mine(txs)
        except Exception:
            self.store.rollback()
            self.engine.head = self.engine.chain.get_canonical_head()
            self.pool.settle([], txs, [])
            log.exception("mining a block failed; its transactions stay pending")
            raise
        dropped = [tx for tx, _reason in result.dropped]
        gone = self.pool.settle(result.included, result.deferred, dropped)
        if gone:
            for tx in gone:
                self.store.put_json(
                    b"d" + tx.hash, {"reason": "an earlier transaction of its sender was dropped"}
                )
            self.store.commit()
        self.head_number = result.number
        if not len(self.pool) and self.journal.path.stat().st_size > JOURNAL_COMPACT_BYTES:
            self.journal.rewrite([])
        for listener in self._listeners:
            try:
                listener(result)
            except Exception:
                log.exception("a block listener failed")
        return result

    def mine(self) -> int:
        """Mine one block now with whatever is ready (worker thread); returns its number."""
        return self._mine_once().number

    def _interval_loop(self) -> None:
        assert self.block_time is not None
        next_at = time.monotonic() + self.block_time
        while not self._closed:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += self.block_time
            if self._closed:
                return
            try:
                self._worker.submit(self._mine_once)
            except RuntimeError:  # the worker shut down
                return

    # -- the journal --------------------------------------------------------------------

    def journal_append(self, raw: bytes) -> concurrent.futures.Future:
        """Queue ``raw`` for the journal; the future completes once it is fsynced."""
        done: concurrent.futures.Future = concurrent.futures.Future()
        with self._journal_lock:
            self._journal_waiting.append((raw, done))
            self._journal_lock.notify()
        return done

    def _journal_loop(self) -> None:
        while True:
            with self._journal_lock:
                while not self._journal_waiting and not self._closed:
                    self._journal_lock.wait()
                if self._closed and not self._journal_waiting:
                    return
                batch, self._journal_waiting = self._journal_waiting, []
            try:
                self.journal.append([raw for raw, _ in batch])
            except OSError as exc:
                for _, done in batch:
                    done.set_exception(exc)
                continue
            for _, done in batch:
                done.set_result(None)
