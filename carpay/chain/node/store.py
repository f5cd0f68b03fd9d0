"""The node's on-disk store: py-evm's key-value data and the node's RPC index in one LMDB.

Writes are buffered and committed together once per block, so a block, its state and its
index entries become durable in one LMDB transaction or not at all (crash-safe by LMDB's
copy-on-write design).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import lmdb
from eth.db.backends.base import BaseDB

__all__ = ["Store"]

_DELETED = object()
_MAP_SIZE = 1 << 38  # 256 GiB of address space; the file grows only as data is written


class _StateDB(BaseDB):
    """The py-evm view of the store (trie nodes, headers, canonical chain)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getitem__(self, key: bytes) -> bytes:
        value = self._store.get(self._store.state, key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._store.put(self._store.state, key, value)

    def __delitem__(self, key: bytes) -> None:
        if self._store.get(self._store.state, key) is None:
            raise KeyError(key)
        self._store.put(self._store.state, key, _DELETED)

    def _exists(self, key: bytes) -> bool:
        return self._store.get(self._store.state, key) is not None


class Store:
    """LMDB environment with two tables: ``state`` for py-evm and ``index`` for RPC records.

    Only the chain's worker thread writes; readers on other threads see committed data, and so
    do readers in other processes (``readonly=True``: the node's JSON-RPC process).
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        if not readonly:
            path.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(
            str(path),
            map_size=_MAP_SIZE,
            max_dbs=4,
            sync=True,
            metasync=True,
            readahead=False,
            readonly=readonly,
        )
        self.state = self.env.open_db(b"state", create=not readonly)
        self.index = self.env.open_db(b"index", create=not readonly)
        self._pending: dict[tuple[Any, bytes], Any] = {}
        self._lock = threading.Lock()
        self.state_db = _StateDB(self)

    def get(self, table: Any, key: bytes) -> bytes | None:
        pending = self._pending.get((table, key))
        if pending is not None:
            return None if pending is _DELETED else pending
        with self.env.begin(db=table, buffers=False) as txn:
            return txn.get(key)

    def get_committed(self, table: Any, key: bytes) -> bytes | None:
        """Read what is durable, ignoring the block being built (for other threads)."""
        with self.env.begin(db=table, buffers=False) as txn:
            return txn.get(key)

    def settled(self, tx_hash: bytes) -> bool:
        """Whether a durable block mined the transaction ``tx_hash``, or dropped it."""
        return self.mined(tx_hash) or self.get_committed(self.index, b"d" + tx_hash) is not None

    def mined(self, tx_hash: bytes) -> bool:
        """Whether a durable block holds the transaction ``tx_hash``."""
        return self.get_committed(self.index, b"t" + tx_hash) is not None

    def forget_dropped(self, tx_hash: bytes) -> None:
        """Durably forget that a block dropped ``tx_hash`` (it is sent again), at once and
        alone: not with the buffered writes of a block being built."""
        key = b"d" + tx_hash
        if self.get_committed(self.index, key) is not None:
            with self._lock, self.env.begin(write=True, db=self.index) as txn:
                txn.delete(key)

    def put(self, table: Any, key: bytes, value: Any) -> None:
        self._pending[(table, key)] = value

    def put_json(self, key: bytes, value: Any) -> None:
        self.put(self.index, key, json.dumps(value, separators=(",", ":")).encode())

    def get_json(self, key: bytes) -> Any:
        raw = self.get_committed(self.index, key)
        return None if raw is None else json.loads(raw)

    def commit(self) -> None:
        """Make every buffered write durable at once."""
        if not self._pending:
            return
        with self._lock, self.env.begin(write=True) as txn:
            for (table, key), value in self._pending.items():
                if value is _DELETED:
                    txn.delete(key, db=table)
                else:
                    txn.put(key, value, db=table)
        self._pending.clear()

    def rollback(self) -> None:
        """Forget every write since the last commit."""
        self._pending.clear()

    def close(self) -> None:
        self.env.close()
