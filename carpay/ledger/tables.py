"""The indexer's tables: what the chain says, copied into SQL for history, search and the explorer.

Every row is derived from the chain and can be rebuilt from it (``carpay reindex``). Rows of a
log are keyed by ``(chain_id, block_hash, tx_hash, log_index)``; every table carries the
``block_number`` a reorg rolls back from. Addresses and hashes are lowercase ``0x`` hex.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from carpay.ledger.models import Base, Uint256, UtcDateTime, utcnow

__all__ = [
    "INDEX_TABLES",
    "STATE_TABLES",
    "LedgerHoldMovement",
    "LedgerMerchant",
    "LedgerPayment",
    "LedgerRefund",
    "IndexCursor",
    "LedgerBalance",
    "LedgerBlock",
    "LedgerEvent",
    "LedgerTransaction",
    "LedgerTransfer",
    "LedgerVehicleRecord",
]

_Address = sa.String(42)
_Hash = sa.String(66)


class IndexCursor(Base):
    """How far the indexer got on one chain: the last block whose effects are all in SQL."""

    __tablename__ = "ledger_cursors"

    chain_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(sa.BigInteger)
    block_hash: Mapped[str] = mapped_column(_Hash)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class LedgerBlock(Base):
    """A block of the canonical chain, as the indexer saw it."""

    __tablename__ = "ledger_blocks"

    chain_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    number: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(_Hash, index=True)
    parent_hash: Mapped[str] = mapped_column(_Hash)
    timestamp: Mapped[int] = mapped_column(sa.BigInteger)
    tx_count: Mapped[int]
    gas_used: Mapped[int] = mapped_column(sa.BigInteger)


class LedgerTransaction(Base):
    """A transaction of an indexed block."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (
        sa.Index("ix_ledger_transactions_from", "chain_id", "from_address", "block_number"),
        sa.Index("ix_ledger_transactions_to", "chain_id", "to_address", "block_number"),
        sa.Index("ix_ledger_transactions_block", "chain_id", "block_number", "tx_index"),
    )

    chain_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(_Hash, primary_key=True)
    block_number: Mapped[int] = mapped_column(sa.BigInteger)
    block_hash: Mapped[str] = mapped_column(_Hash)
    tx_index: Mapped[int]
    from_address: Mapped[str] = mapped_column(_Address)
    to_address: Mapped[str | None] = mapped_column(_Address)
    value: Mapped[int] = mapped_column(Uint256)
    nonce: Mapped[int] = mapped_column(sa.BigInteger)


class LedgerEvent(Base):
    """A decoded event of one of carpay's contracts; ``args`` holds its arguments by name.

    Integers are kept as decimal strings and bytes as ``0x`` hex, so a JSON column holds
    any uint256 exactly.
    """

    __tablename__ = "ledger_events"
    __table_args__ = (
        sa.UniqueConstraint("chain_id", "block_hash", "tx_hash", "log_index"),
        sa.Index("ix_ledger_events_block", "chain_id", "block_number"),
        sa.Index("ix_ledger_events_name", "chain_id", "event", "id"),
        sa.Index("ix_ledger_events_tx", "chain_id", "tx_hash"),
        sa.Index("ix_ledger_events_address", "chain_id", "address", "id"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    chain_id: Mapped[int] = mapped_column(sa.BigInteger)
    block_number: Mapped[int] = mapped_column(sa.BigInteger)
    block_hash: Mapped[str] = mapped_column(_Hash)
    tx_hash: Mapped[str] = mapped_column(_Hash)
    log_index: Mapped[int]
    address: Mapped[str] = mapped_column(_Address)
    contract: Mapped[str] = mapped_column(sa.String(100))
    event: Mapped[str] = mapped_column(sa.String(100))
    args: Mapped[dict[str, Any]] = mapped_column(sa.JSON)


class LedgerTransfer(Base):
    """A movement of a currency token: ``kind`` is ``transfer``, ``mint`` or ``burn``."""

    __tablename__ = "ledger_transfers"
    __table_args__ = (
        sa.UniqueConstraint("chain_id", "block_hash", "tx_hash", "log_index"),
        sa.Index("ix_ledger_transfers_from", "chain_id", "from_address", "id"),
        sa.Index("ix_ledger_transfers_to", "chain_id", "to_address", "id"),
        sa.Index("ix_ledger_transfers_token", "chain_id", "token", "id"),
        sa.Index("ix_ledger_transfers_block", "chain_id", "block_number"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    chain_id: Mapped[int] = mapped_column(sa.BigInteger)
    block_number: Mapped[int] = mapped_column(sa.BigInteger)
    block_hash: Mapped[str] = mapped_column(_Hash)
    tx_hash: Mapped[str] = mapped_column(_Hash)
    log_index: Mapped[int]
    timestamp: Mapped[int] = mapped_column(sa.BigInteger)
    token: Mapped[str] = mapped_column(_Address)
    from_address: Mapped[str] = mapped_column(_Address)
    to_address: Mapped[str] = mapped_column(_Address)
    value: Mapped[int] = mapped_column(Uint256)
    kind: Mapped[str] = mapped_column(sa.String(8))


class LedgerBalance(Base):
    """An account's balance of one token, the sum of its indexed transfers."""

    __tablename__ = "ledger_balances"

    chain_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    token: Mapped[str] = mapped_column(_Address, primary_key=True)
    account: Mapped[str] = mapped_column(_Address, primary_key=True)
    balance: Mapped[int] = mapped_column(Uint256)


class _LogRow:
    """The columns of a row that one log produced, and what locates it on the chain."""

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    chain_id: Mapped[int] = mapped_column(sa.BigInteger)
    block_number: Mapped[int] = mapped_column(sa.BigInteger)
    block_hash: Mapped[str] = mapped_column(_Hash)
    tx_hash: Mapped[str] = mapped_column(_Hash)
    log_index: Mapped[int]
    timestamp: Mapped[int] = mapped_column(sa.BigInteger)


class LedgerPayment(_LogRow, Base):
    """Money a merchant received through checkout: a paid invoice or a captured hold.

    ``kind`` is ``invoice`` (``reference`` is the invoice id) or ``capture`` (the hold id).
    """

    __tablename__ = "ledger_payments"
    __table_args__ = (
        sa.UniqueConstraint("chain_id", "block_hash", "tx_hash", "log_index"),
        sa.Index("ix_ledger_payments_merchant", "chain_id", "merchant", "timestamp"),
        sa.Index("ix_ledger_payments_payer", "chain_id", "payer", "id"),
        sa.Index("ix_ledger_payments_reference", "chain_id", "reference"),
        sa.Index("ix_ledger_payments_block", "chain_id", "block_number"),
    )

    kind: Mapped[str] = mapped_column(sa.String(8))
    reference: Mapped[str] = mapped_column(_Hash)
    payer: Mapped[str] = mapped_column(_Address)
    merchant: Mapped[str] = mapped_column(_Address)
    token: Mapped[str] = mapped_column(_Address)
    gross: Mapped[int] = mapped_column(Uint256)
    fee: Mapped[int] = mapped_column(Uint256)
    net: Mapped[int] = mapped_column(Uint256)


class LedgerRefund(_LogRow, Base):
    """A refund of (part of) a paid invoice; ``refunded`` is the invoice's refunded total."""

    __tablename__ = "ledger_refunds"
    __table_args__ = (
        sa.UniqueConstraint("chain_id", "block_hash", "tx_hash", "log_index"),
        sa.Index("ix_ledger_refunds_merchant", "chain_id", "merchant", "timestamp"),
        sa.Index("ix_ledger_refunds_invoice", "chain_id", "invoice_id"),
        sa.Index("ix_ledger_refunds_block", "chain_id", "block_number"),
    )

    invoice_id: Mapped[str] = mapped_column(_Hash)
    payer: Mapped[str] = mapped_column(_Address)
    merchant: Mapped[str] = mapped_column(_Address)
    token: Mapped[str] = mapped_column(_Address)
    amount: Mapped[int] = mapped_column(Uint256)
    refunded: Mapped[int] = mapped_column(Uint256)


class LedgerHoldMovement(_LogRow, Base):
    """One step in a hold's life: ``placed``, ``captured``, ``voided`` or ``reclaimed``.

    ``amount`` is what was held (placed), captured (captured) or given back (voided,
    reclaimed); ``returned`` what a closing capture gave back; ``remaining`` what is still
    held after the step.
    """

    __tablename__ = "ledger_hold_movements"
    __table_args__ = (
        sa.UniqueConstraint("chain_id", "block_hash", "tx_hash", "log_index"),
        sa.Index("ix_ledger_hold_movements_hold", "chain_id", "hold_id", "id"),
        sa.Index("ix_ledger_hold_movements_payer", "chain_id", "payer", "id"),
        sa.Index("ix_ledger_hold_movements_merchant", "chain_id", "merchant", "id"),
        sa.Index("ix_ledger_hold_movements_block", "chain_id", "block_number"),
    )

    hold_id: Mapped[str] = mapped_column(_Hash)
    kind: Mapped[str] = mapped_column(sa.String(10))
    payer: Mapped[str] = mapped_column(_Address)
    merchant: Mapped[str] = mapped_column(_Address)
    token: Mapped[str] = mapped_column(_Address)
    amount: Mapped[int] = mapped_column(Uint256)
    returned: Mapped[int] = mapped_column(Uint256)
    remaining: Mapped[int] = mapped_column(Uint256)
    deadline: Mapped[int | None] = mapped_column(sa.BigInteger)


class LedgerVehicleRecord(_LogRow, Base):
    """One event in a vehicle's life, by title id (decimal): ``kind`` is the event's name
    (Transfer, TitleMinted, LienRecorded, LienPayoffChanged, LienReleased, ServiceRecorded,
    FineIssued, FinePaid, FineWaived, ...) and ``data`` its arguments."""

    __tablename__ = "ledger_vehicle_records"
    __table_args__ = (
        sa.UniqueConstraint("chain_id", "block_hash", "tx_hash", "log_index"),
        sa.Index("ix_ledger_vehicle_records_title", "chain_id", "title", "id"),
        sa.Index("ix_ledger_vehicle_records_block", "chain_id", "block_number"),
    )

    title: Mapped[str] = mapped_column(sa.String(78))
    contract: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(50))
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)


class LedgerMerchant(Base):
    """A merchant as the registry's events left it (rebuilt from the events on a reorg)."""

    __tablename__ = "ledger_merchants"

    chain_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    merchant: Mapped[str] = mapped_column(_Address, primary_key=True)
    category: Mapped[int]
    payout: Mapped[str] = mapped_column(_Address)
    fee_bps: Mapped[int]
    active: Mapped[bool]
    registered_block: Mapped[int] = mapped_column(sa.BigInteger)
    updated_block: Mapped[int] = mapped_column(sa.BigInteger)


#: Every table whose rows come from one log or block, children first: what a rollback or a
#: reindex clears above a block.
INDEX_TABLES = (
    LedgerVehicleRecord,
    LedgerPayment,
    LedgerRefund,
    LedgerHoldMovement,
    LedgerTransfer,
    LedgerEvent,
    LedgerTransaction,
    LedgerBlock,
)
#: Tables of current state, rebuilt from ``ledger_events`` after a rollback.
STATE_TABLES = (LedgerBalance, LedgerMerchant)
