"""The indexer: follows carpay's contract events into SQL, resumable and safe across reorgs.

Each round reads a range of blocks (with their transactions) and the logs of the watched
contracts in it, checks that they form one chain continuing from the cursor, and writes
blocks, transactions, decoded events, typed rows and the new cursor in one database
transaction: a crash leaves either all of a range or none of it, and a log is never applied
twice (its key ``(chain_id, block_hash, tx_hash, log_index)`` is unique). A round first
checks that the cursor's block is still canonical; if not, it finds the common ancestor,
deletes everything above it (undoing balances) and carries on from there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic

from carpay.chain import Chain
from carpay.errors import ChainError
from carpay.ledger.db import Database
from carpay.ledger.projections import PROJECTIONS, Projection, rebuild_state
from carpay.ledger.tables import (
    INDEX_TABLES,
    IndexCursor,
    LedgerBalance,
    LedgerBlock,
    LedgerEvent,
    LedgerMerchant,
    LedgerTransaction,
)

__all__ = ["Creates", "Indexer", "Watched"]

log = logging.getLogger(__name__)

ZERO_ADDRESS = "0x" + "00" * 20
#: How many blocks back a reorg is looked for, per round trip to the node.
_ANCESTOR_STEP = 64


@dataclass(frozen=True)
class Creates:
    """What a factory's ``event`` means: a new contract at its argument ``arg``, to be
    followed too, its rows named ``name``, its events read with ``abi``."""

    event: str
    arg: str
    name: str
    abi: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Watched:
    """A contract the indexer follows: its address, a name for its rows, and its ABI; for a
    factory, the contracts it creates (followed from the block each is created in)."""

    address: str
    name: str
    abi: Sequence[Mapping[str, Any]]
    creates: Creates | None = None


@dataclass(frozen=True)
class _EventSpec:
    name: str
    names: tuple[str, ...]
    indexed: tuple[bool, ...]
    types: tuple[str, ...]

    @property
    def is_erc20_transfer(self) -> bool:
        """ERC-20's Transfer(from, to, value), not ERC-721's, whose token id is indexed."""
        return self.name == "Transfer" and self.indexed == (True, True, False)

    def decode(self, topics: Sequence[str], data: str) -> dict[str, Any]:
        plain_types = [t for t, i in zip(self.types, self.indexed, strict=True) if not i]
        plain = iter(abi_decode(plain_types, bytes.fromhex(data[2:])) if plain_types else ())
        topic = iter(topics[1:])
        args: dict[str, Any] = {}
        for name, kind, indexed in zip(self.names, self.types, self.indexed, strict=True):
            args[name] = _from_topic(kind, next(topic)) if indexed else _jsonable(next(plain))
        return args


def _from_topic(kind: str, topic: str) -> Any:
    if kind == "address":
        return "0x" + topic[-40:].lower()
    if kind.startswith("uint"):
        return str(int(topic, 16))
    if kind.startswith("int"):
        value = int(topic, 16)
        return str(value - (1 << 256) if value >= 1 << 255 else value)
    if kind == "bool":
        return int(topic, 16) != 0
    return topic.lower()  # bytes32, or the hash of a dynamic value


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") and len(value) == 42 else value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _event_specs(abi: Iterable[Mapping[str, Any]]) -> dict[str, _EventSpec]:
    specs = {}
    for item in abi:
        if item.get("type") != "event" or item.get("anonymous"):
            continue
        inputs = item["inputs"]
        topic = "0x" + event_abi_to_log_topic(dict(item)).hex()
        specs[topic] = _EventSpec(
            item["name"],
            tuple(i["name"] for i in inputs),
            tuple(bool(i.get("indexed")) for i in inputs),
            tuple(i["type"] for i in inputs),
        )
    return specs


@dataclass
class _Range:
    """What one round read from the node, checked to be one chain."""

    blocks: list[dict[str, Any]]
    logs: list[dict[str, Any]]


class Indexer:
    """Follows ``watched`` contracts on ``chain`` into ``db``.

    ``confirmations`` blocks are left unindexed behind the head (0 on the embedded node, where
    blocks are final; more on a network that reorganises). ``batch_blocks`` bounds a round.
    """

    def __init__(
        self,
        db: Database,
        chain: Chain,
        watched: Iterable[Watched] = (),
        *,
        confirmations: int = 0,
        batch_blocks: int = 500,
        start_block: int = 0,
    ) -> None:
        self.db = db
        self.chain = chain
        self.confirmations = confirmations
        self.batch_blocks = batch_blocks
        self.start_block = start_block
        self._watched: dict[str, Watched] = {}
        self._specs: dict[str, dict[str, _EventSpec]] = {}
        # Contracts the watched factories created: found in the logs by their events' topics,
        # not by address, so that any number of them costs one query a round.
        self._factories: dict[str, Creates] = {}
        self._children: dict[str, Creates] = {}
        self._child_topics: set[str] = set()
        self._children_restored = False
        self._projections: list[Projection] = list(PROJECTIONS)
        for contract in watched:
            self.watch(contract)

    @property
    def chain_id(self) -> int:
        return self.chain.chain_id

    def watch(self, contract: Watched) -> None:
        """Follow ``contract`` too, from the next round on."""
        address = contract.address.lower()
        self._watched[address] = contract
        self._specs[address] = _event_specs(contract.abi)
        if contract.creates is not None:
            self._factories[address] = contract.creates
            self._child_topics |= set(_event_specs(contract.creates.abi))
            self._children_restored = False

    def _adopt(self, address: str, creates: Creates) -> None:
        address = address.lower()
        if address not in self._watched and address not in self._children:
            self._children[address] = creates
            self._specs[address] = _event_specs(creates.abi)

    def _restore_children(self, chain_id: int) -> None:
        """The contracts the factories created, as far as the ledger has seen them."""
        with self.db.read() as session:
            for address, creates in self._factories.items():
                rows = session.scalars(
                    sa.select(LedgerEvent.args).where(
                        LedgerEvent.chain_id == chain_id,
                        LedgerEvent.address == address,
                        LedgerEvent.event == creates.event,
                    )
                )
                for args in rows:
                    self._adopt(args[creates.arg], creates)
        self._children_restored = True

    def add_projection(self, projection: Projection) -> None:
        """Also feed each round's events to ``projection``."""
        self._projections.append(projection)

    # -- running -----------------------------------------------------------------------------

    def run(self, stop: threading.Event, interval: float = 0.2) -> None:
        """Index until ``stop`` is set, waiting ``interval`` whenever it has caught up; errors
        of the node are logged and retried."""
        while not stop.is_set():
            try:
                caught_up = self.run_once() < 0
            except ChainError as exc:
                log.warning("indexer: %s; retrying", exc)
                caught_up = True
            if caught_up:
                stop.wait(interval)

    def catch_up(self) -> int:
        """Index up to the current target block; the number of events indexed."""
        total = 0
        while True:
            done = self.run_once()
            total += max(done, 0)
            if done < 0:
                return total

    def run_once(self) -> int:
        """One round: the number of events indexed, or -1 when there was nothing to do."""
        chain_id = self.chain_id
        if not self._children_restored:
            self._restore_children(chain_id)
        with self.db.read() as session:
            cursor = session.get(IndexCursor, chain_id)
            cursor_at = (cursor.block_number, cursor.block_hash) if cursor else None
        head, canonical = self._head_and_canonical(cursor_at)
        if not canonical:
            assert cursor_at is not None
            self._roll_back(chain_id, cursor_at[0])
            return 0
        start = cursor_at[0] + 1 if cursor_at else self.start_block
        target = head - self.confirmations
        if start > target:
            return -1
        end = min(target, start + self.batch_blocks - 1)
        fetched = self._fetch(start, end, cursor_at[1] if cursor_at else None)
        if fetched is None:
            return 0  # the chain moved under us: the next round sees the reorg
        return self._apply(chain_id, cursor_at, fetched)

    def reindex(self) -> int:
        """Forget everything indexed on this chain and index it again from the start."""
        chain_id = self.chain_id
        with self.db.begin() as session:
            for table in INDEX_TABLES:
                session.execute(sa.delete(table).where(table.chain_id == chain_id))
            session.execute(sa.delete(LedgerBalance).where(LedgerBalance.chain_id == chain_id))
            session.execute(sa.delete(LedgerMerchant).where(LedgerMerchant.chain_id == chain_id))
            session.execute(sa.delete(IndexCursor).where(IndexCursor.chain_id == chain_id))
        return self.catch_up()

    # -- reading the chain -------------------------------------------------------------------

    def _head_and_canonical(self, cursor_at: tuple[int, str] | None) -> tuple[int, bool]:
        """The newest block's number, and whether the block at the cursor is still the
        chain's, in one request: a round that finds nothing new costs one. (The node may
        answer them in either order; a block that changes between them is caught by
        ``_fetch``, which checks each new block's parent from the cursor on.)"""
        calls: list[tuple[str, list[Any]]] = [("eth_blockNumber", [])]
        if cursor_at is not None:
            calls.append(("eth_getBlockByNumber", [hex(cursor_at[0]), False]))
        answers = self.chain.batch(calls)
        if cursor_at is None:
            return int(answers[0], 16), True
        block = answers[1]
        return int(answers[0], 16), block is not None and block["hash"].lower() == cursor_at[1]

    def _fetch(self, start: int, end: int, parent_hash: str | None) -> _Range | None:
        calls = [("eth_getBlockByNumber", [hex(n), True]) for n in range(start, end + 1)]
        blocks = self.chain.batch(calls)
        expected = parent_hash
        for block in blocks:
            if block is None or (expected is not None and block["parentHash"].lower() != expected):
                return None
            expected = block["hash"].lower()
        logs: list[dict[str, Any]] = []
        if self._watched:
            span = {"fromBlock": hex(start), "toBlock": hex(end)}
            calls = [("eth_getLogs", [{**span, "address": list(self._watched)}])]
            if self._child_topics:
                calls.append(("eth_getLogs", [{**span, "topics": [sorted(self._child_topics)]}]))
            answers = self.chain.batch(calls)
            logs = self._with_children(answers[0], answers[1] if len(answers) > 1 else [])
            hashes = {int(b["number"], 16): b["hash"].lower() for b in blocks}
            for entry in logs:
                if hashes.get(int(entry["blockNumber"], 16)) != entry["blockHash"].lower():
                    return None
        return _Range(blocks, logs)

    def _with_children(
        self, watched: list[dict[str, Any]], candidates: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The watched contracts' logs and those of the contracts the factories created, in
        chain order. A contract a factory creates in this range is followed from the
        transaction that creates it (its constructor's events come before the factory's)."""

        def position(entry: Mapping[str, Any]) -> tuple[int, int]:
            return int(entry["blockNumber"], 16), int(entry["logIndex"], 16)

        def transaction(entry: Mapping[str, Any]) -> tuple[int, int]:
            return int(entry["blockNumber"], 16), int(entry["transactionIndex"], 16)

        born: dict[str, tuple[int, int]] = {}
        for entry in watched:
            address = entry["address"].lower()
            creates = self._factories.get(address)
            topics = entry["topics"]
            spec = self._specs[address].get(topics[0].lower()) if creates and topics else None
            if spec is not None and spec.name == creates.event:
                child = spec.decode(entry["topics"], entry["data"])[creates.arg]
                if child not in self._children and child not in self._watched:
                    born.setdefault(child, transaction(entry))
                    self._adopt(child, creates)
        if not candidates:
            return watched
        ours = {position(e) for e in watched}
        theirs = [
            e
            for e in candidates
            if (address := e["address"].lower()) in self._children
            and position(e) not in ours
            and transaction(e) >= born.get(address, (0, 0))
        ]
        return sorted([*watched, *theirs], key=position)

    # -- writing SQL -------------------------------------------------------------------------

    def _apply(self, chain_id: int, cursor_at: tuple[int, str] | None, fetched: _Range) -> int:
        blocks, transactions = [], []
        timestamps: dict[int, int] = {}
        for block in fetched.blocks:
            number = int(block["number"], 16)
            block_hash = block["hash"].lower()
            timestamps[number] = int(block["timestamp"], 16)
            blocks.append(
                {
                    "chain_id": chain_id,
                    "number": number,
                    "hash": block_hash,
                    "parent_hash": block["parentHash"].lower(),
                    "timestamp": timestamps[number],
                    "tx_count": len(block["transactions"]),
                    "gas_used": int(block["gasUsed"], 16),
                }
            )
            for tx in block["transactions"]:
                transactions.append(
                    {
                        "chain_id": chain_id,
                        "hash": tx["hash"].lower(),
                        "block_number": number,
                        "block_hash": block_hash,
                        "tx_index": int(tx["transactionIndex"], 16),
                        "from_address": tx["from"].lower(),
                        "to_address": tx["to"].lower() if tx.get("to") else None,
                        "value": int(tx["value"], 16),
                        "nonce": int(tx["nonce"], 16),
                    }
                )
        events = []
        for entry in fetched.logs:
            address = entry["address"].lower()
            topics = entry["topics"]
            spec = self._specs.get(address, {}).get(topics[0].lower()) if topics else None
            if spec is None:
                continue  # an event we have no ABI for: not one of ours to interpret
            number = int(entry["blockNumber"], 16)
            events.append(
                {
                    "chain_id": chain_id,
                    "block_number": number,
                    "block_hash": entry["blockHash"].lower(),
                    "tx_hash": entry["transactionHash"].lower(),
                    "log_index": int(entry["logIndex"], 16),
                    "address": address,
                    "contract": self._name(address),
                    "event": spec.name,
                    "args": spec.decode(topics, entry["data"]),
                    "timestamp": timestamps[number],
                    "erc20_transfer": spec.is_erc20_transfer,
                }
            )
        last = blocks[-1]
        with self.db.begin() as session:
            now = session.execute(
                sa.select(IndexCursor).where(IndexCursor.chain_id == chain_id).with_for_update()
            ).scalar_one_or_none()
            seen = (now.block_number, now.block_hash) if now else None
            if seen != cursor_at:
                return 0  # another indexer got here first
            if blocks:
                session.execute(sa.insert(LedgerBlock), blocks)
            if transactions:
                session.execute(sa.insert(LedgerTransaction), transactions)
            if events:
                extra = ("timestamp", "erc20_transfer")  # for projections, not columns
                rows = [{k: v for k, v in e.items() if k not in extra} for e in events]
                session.execute(sa.insert(LedgerEvent), rows)
                for projection in self._projections:
                    projection(session, chain_id, events)
            if now is None:
                session.add(
                    IndexCursor(
                        chain_id=chain_id, block_number=last["number"], block_hash=last["hash"]
                    )
                )
            else:
                now.block_number, now.block_hash = last["number"], last["hash"]
        return len(events)

    def _name(self, address: str) -> str:
        watched = self._watched.get(address)
        return watched.name if watched is not None else self._children[address].name

    def _roll_back(self, chain_id: int, cursor_number: int) -> None:
        # The factories' creations are learnt again from what the ledger keeps.
        for address in self._children:
            del self._specs[address]
        self._children.clear()
        self._children_restored = False
        ancestor = self._common_ancestor(chain_id, cursor_number)
        log.warning("indexer: reorg on chain %s, rolling back to block %s", chain_id, ancestor)
        with self.db.begin() as session:
            rebuild_state(session, chain_id, above=ancestor)
            cursor = session.get(IndexCursor, chain_id)
            if ancestor < self.start_block:
                session.delete(cursor)
            else:
                block = session.get(LedgerBlock, (chain_id, ancestor))
                cursor.block_number, cursor.block_hash = ancestor, block.hash

    def _common_ancestor(self, chain_id: int, below: int) -> int:
        """The highest indexed block that is still canonical (``start_block - 1`` if none)."""
        high = below
        while high >= self.start_block:
            low = max(self.start_block, high - _ANCESTOR_STEP + 1)
            with self.db.read() as session:
                ours = dict(
                    session.execute(
                        sa.select(LedgerBlock.number, LedgerBlock.hash).where(
                            LedgerBlock.chain_id == chain_id, LedgerBlock.number.between(low, high)
                        )
                    ).all()
                )
            calls = [("eth_getBlockByNumber", [hex(n), False]) for n in range(high, low - 1, -1)]
            for number, block in zip(
                range(high, low - 1, -1), self.chain.batch(calls), strict=True
            ):
                if block is not None and ours.get(number) == block["hash"].lower():
                    return number
            high = low - 1
        return self.start_block - 1
