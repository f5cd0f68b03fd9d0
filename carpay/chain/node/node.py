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

from carpay.chain.node.engine import BlockResult, Engine, decode_transaction, transaction_fields
from carpay.chain.node.journal import Journal, JournalWriter
from carpay.chain.node.pool import Pool, Rejected
from carpay.chain.node.serving import ENGINE_OPERATIONS, POOL_OPERATIONS, Serving
from carpay.chain.node.store import Store
from carpay.errors import NodeError
from carpay.settings import DEV_MNEMONIC

__all__ = ["Node", "dev_accounts"]

log = logging.getLogger("carpay.node")

DEV_BALANCE = 10_000 * 10**18
MAX_TXS_PER_BLOCK = 2_000
#: How long opening waits for a data directory that another node holds (one just killed
#: may still be exiting).
LOCK_WAIT_S = 2.0


def dev_accounts(mnemonic: str = DEV_MNEMONIC, count: int = 10) -> list[Any]:
    """The accounts m/44'/60'/0'/0/i of ``mnemonic``, as anvil and Hardhat derive them."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{i}") for i in range(count)
    ]


class Node(Serving):
    """A single-machine EVM node that any Ethereum tool can use.

    Transactions are acknowledged only once they are in the fsynced journal, mined as soon as
    they arrive (those arriving together share a block), and every block is committed to LMDB
    atomically. ``start()`` serves JSON-RPC over HTTP and WebSocket on ``host:port`` (port 0
    picks a free one) from a background thread; ``serve_forever()`` does it in the caller's.

    This runs everything in one process; :class:`~carpay.chain.node.split.SplitNode` (what
    ``carpay node`` runs) serves JSON-RPC in one process and this, without its own journal
    (``writes_journal=False``: the JSON-RPC process writes it), in another. The JSON-RPC side
    reaches the engine only through :meth:`ask` and :meth:`journaled`.
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
        writes_journal: bool = True,
    ) -> None:
        super().__init__(data_dir, chain_id=chain_id, host=host, port=port, block_time=block_time)
        self.accounts = dev_accounts(mnemonic, accounts) if mnemonic else []
        self.writes_journal = writes_journal
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="node-worker")
        self._journal: JournalWriter | None = None
        self._listeners: list[Callable[[BlockResult], None]] = []
        self._mine_scheduled = False
        self._closed = False
        self.engine: Engine | None = None
        self.store: Store | None = None
        self.pool = Pool()
        self.head_number = 0

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def addresses(self) -> list[str]:
        """The funded development accounts' addresses."""
        return [a.address for a in self.accounts]

    def open(self) -> None:
        """Open the data directory, create genesis if new, replay the journal."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._worker.submit(self._open).result()
        if self.writes_journal:
            assert self.store is not None
            self._journal = JournalWriter(Journal(self.data_dir / "journal"), self.store.settled)
        if self.block_time:
            threading.Thread(target=self._interval_loop, name="node-clock", daemon=True).start()

    def _open(self) -> None:
        self._lock_file = open(self.data_dir / "LOCK", "a+b")  # noqa: SIM115 (held while open)
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                self._lock_file.close()
                raise NodeError(
                    f"another node is using the data directory {self.data_dir}"
                ) from None
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
        journal = Journal(self.data_dir / "journal")
        replayed = 0
        for raw in list(journal.replay()):
            try:
                tx = decode_transaction(raw)
            except Exception:
                continue
            if self.is_known(tx.hash):
                continue
            try:
                self._admit(tx, raw)
                replayed += 1
            except Rejected:
                continue
        journal.rewrite([self.pool.raw[h] for h in self._pool_order()])
        journal.close()
        if replayed:
            log.info("replayed %d journaled transactions", replayed)
            while self.pool.ready:
                self._mine_once()

    def _pool_order(self) -> list[bytes]:
        order = [tx.hash for tx in self.pool.ready.values()]
        order += [tx.hash for q in self.pool.queued.values() for tx in q.values()]
        return order

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._journal is not None:
            self._journal.close()
        self._worker.submit(self._close).result()
        self._worker.shutdown()

    def _close(self) -> None:
        if self.store is not None:
            self.store.close()
            self._lock_file.close()

    # -- the worker ---------------------------------------------------------------------

    def run(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        """Run ``fn(*args)`` on the worker thread, the only one that touches the engine."""
        return self._worker.submit(fn, *args)

    def operation(self, name: str) -> Callable[..., Any]:
        """The engine operation ``name`` (one of :data:`OPERATIONS`), to run on the worker."""
        if name in ENGINE_OPERATIONS:
            return getattr(self.engine, name)
        if name in POOL_OPERATIONS:
            return getattr(self, name)
        raise KeyError(name)

    async def ask(self, name: str, *args: Any) -> Any:
        """Run the engine operation ``name`` on the worker; its result."""
        return await asyncio.wrap_future(self._worker.submit(self.operation(name), *args))

    async def journaled(self, raw: bytes) -> None:
        """Return once ``raw`` is in the fsynced journal."""
        assert self._journal is not None, "this node does not write its journal"
        await asyncio.wrap_future(self._journal.append(raw))

    def on_block(self, listener: Callable[[BlockResult], None]) -> None:
        """Call ``listener(result)`` on the worker thread after every committed block."""
        self._listeners.append(listener)

    def is_known(self, tx_hash: bytes) -> bool:
        assert self.store is not None
        return self.store.settled(tx_hash)

    def submit(self, raw: bytes, tx: Any = None) -> bytes:
        """Validate and pool a raw transaction (worker thread); returns its hash.

        ``tx``, if given, is ``raw`` decoded, its sender recovered (by
        :func:`~carpay.chain.node.engine.decode_transaction`, in the JSON-RPC process).
        """
        assert self.engine is not None
        if tx is None:
            try:
                tx = decode_transaction(raw)
            except Exception as exc:
                raise Rejected(f"invalid transaction: {exc}") from exc
        if tx.hash in self.pool or self.store.mined(tx.hash):
            raise Rejected("already known")
        self._check(tx)
        ready = self._admit(tx, raw)
        # One a block dropped (its sender could not pay for it then, say) may be sent again,
        # as to any node. Once pooled (not before: refused, it stays dropped), the record of
        # its drop goes before the answer, or the journal (which skips what is settled) would
        # not replay it after a crash. Nothing mines it in between: mining runs on this thread.
        self.store.forget_dropped(tx.hash)
        if ready and not self._mine_scheduled and not self.block_time:
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

    def pending_transaction(self, tx_hash: bytes) -> dict[str, Any] | None:
        """The JSON-RPC form of a pooled transaction; None if it is not in the pool."""
        if tx_hash not in self.pool:
            return None
        for tx in self.pool.ready.values():
            if tx.hash == tx_hash:
                return transaction_fields(tx)
        for queue in self.pool.queued.values():
            for tx in queue.values():
                if tx.hash == tx_hash:
                    return transaction_fields(tx)
        return None

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
