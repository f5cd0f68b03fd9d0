"""The node's transaction pool: ready transactions in arrival order, future nonces queued."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["Pool", "Rejected"]

MAX_QUEUED_PER_SENDER = 256
REPLACEMENT_BUMP_PERCENT = 10


class Rejected(Exception):
    """The node refuses the transaction; the message is what the client is told."""


def _fees(tx: Any) -> tuple[int, int]:
    max_fee = getattr(tx, "max_fee_per_gas", None)
    if max_fee is None:
        return tx.gas_price, tx.gas_price
    return max_fee, tx.max_priority_fee_per_gas


class Pool:
    """Pending transactions of every sender.

    ``ready`` holds transactions whose nonce follows the sender's last one, keyed by
    (sender, nonce) in arrival order: mining takes them from the front. ``queued`` holds
    transactions with a nonce gap until the gap fills. Only the node's worker thread uses it.
    """

    def __init__(self) -> None:
        self.ready: OrderedDict[tuple[bytes, int], Any] = OrderedDict()
        self.queued: dict[bytes, dict[int, Any]] = {}
        self.next_nonce: dict[bytes, int] = {}
        self.raw: dict[bytes, bytes] = {}

    def __len__(self) -> int:
        return len(self.ready) + sum(len(q) for q in self.queued.values())

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self.raw

    def admit(self, tx: Any, raw: bytes, state_nonce: int) -> bool:
        """Add ``tx``; True if it is ready to mine, False if queued behind a nonce gap."""
        sender = tx.sender
        expected = self.next_nonce.get(sender, state_nonce)
        expected = max(expected, state_nonce)
        key = (sender, tx.nonce)
        if tx.nonce < expected:
            old = self.ready.get(key)
            if old is None:
                raise Rejected(f"nonce too low: next nonce {expected}, tx nonce {tx.nonce}")
            self._replace(self.ready, key, old, tx, raw)
            return True
        if tx.nonce > expected:
            queue = self.queued.setdefault(sender, {})
            if tx.nonce in queue:
                self._replace(queue, tx.nonce, queue[tx.nonce], tx, raw)
                return False
            if len(queue) >= MAX_QUEUED_PER_SENDER:
                raise Rejected("too many queued transactions for this sender")
            queue[tx.nonce] = tx
            self.raw[tx.hash] = raw
            self.next_nonce.setdefault(sender, expected)
            return False
        self.ready[key] = tx
        self.raw[tx.hash] = raw
        nonce = tx.nonce + 1
        queue = self.queued.get(sender, {})
        while nonce in queue:
            self.ready[(sender, nonce)] = queue.pop(nonce)
            nonce += 1
        if not queue:
            self.queued.pop(sender, None)
        self.next_nonce[sender] = nonce
        return True

    def _replace(self, table: dict, key: Any, old: Any, tx: Any, raw: bytes) -> None:
        old_fee, old_tip = _fees(old)
        new_fee, new_tip = _fees(tx)
        factor = 100 + REPLACEMENT_BUMP_PERCENT
        if new_fee * 100 < old_fee * factor or new_tip * 100 < old_tip * factor:
            raise Rejected("replacement transaction underpriced")
        del self.raw[old.hash]
        table[key] = tx
        self.raw[tx.hash] = raw

    def pending_nonce(self, sender: bytes, state_nonce: int) -> int:
        return max(self.next_nonce.get(sender, state_nonce), state_nonce)

    def take(self, limit: int) -> list[Any]:
        """Remove and return up to ``limit`` ready transactions, oldest first."""
        taken = []
        while self.ready and len(taken) < limit:
            _key, tx = self.ready.popitem(last=False)
            taken.append(tx)
        return taken

    def settle(self, included: list[Any], deferred: list[Any], dropped: list[Any]) -> list[Any]:
        """Account for a mined block; returns every transaction dropped with a sender's.

        Deferred transactions go back to the front of the line in their order. A dropped
        transaction takes every later one of its sender with it: they can never be mined.
        """
        for tx in included:
            self.raw.pop(tx.hash, None)
        for tx in reversed(deferred):
            self.ready[(tx.sender, tx.nonce)] = tx
            self.ready.move_to_end((tx.sender, tx.nonce), last=False)
        gone = []
        for tx in dropped:
            sender = tx.sender
            self.raw.pop(tx.hash, None)
            self.next_nonce.pop(sender, None)
            for key in [k for k in self.ready if k[0] == sender]:
                gone.append(self.ready.pop(key))
            gone.extend(self.queued.pop(sender, {}).values())
        for tx in gone:
            self.raw.pop(tx.hash, None)
        return gone
