"""ledger index tables

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "ledger_balances",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("token", sa.String(length=42), nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("balance", sa.String(length=78), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "token", "account", name=op.f("pk_ledger_balances")),
    )
    op.create_table(
        "ledger_blocks",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("parent_hash", sa.String(length=66), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_count", sa.Integer(), nullable=False),
        sa.Column("gas_used", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "number", name=op.f("pk_ledger_blocks")),
    )
    with op.batch_alter_table("ledger_blocks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_blocks_hash"), ["hash"], unique=False)

    op.create_table(
        "ledger_cursors",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", name=op.f("pk_ledger_cursors")),
    )
    op.create_table(
        "ledger_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("contract", sa.String(length=100), nullable=False),
        sa.Column("event", sa.String(length=100), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_events")),
        sa.UniqueConstraint(
            "chain_id",
            "block_hash",
            "tx_hash",
            "log_index",
            name=op.f("uq_ledger_events_chain_id_block_hash_tx_hash_log_index"),
        ),
    )
    with op.batch_alter_table("ledger_events", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_events_block", ["chain_id", "block_number"], unique=False)
        batch_op.create_index("ix_ledger_events_name", ["chain_id", "event", "id"], unique=False)
        batch_op.create_index("ix_ledger_events_tx", ["chain_id", "tx_hash"], unique=False)

    op.create_table(
        "ledger_transactions",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.Column("from_address", sa.String(length=42), nullable=False),
        sa.Column("to_address", sa.String(length=42), nullable=True),
        sa.Column("value", sa.String(length=78), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "hash", name=op.f("pk_ledger_transactions")),
    )
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_transactions_block", ["chain_id", "block_number", "tx_index"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_transactions_from",
            ["chain_id", "from_address", "block_number"],
            unique=False,
        )
        batch_op.create_index(
            "ix_ledger_transactions_to", ["chain_id", "to_address", "block_number"], unique=False
        )

    op.create_table(
        "ledger_transfers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("token", sa.String(length=42), nullable=False),
        sa.Column("from_address", sa.String(length=42), nullable=False),
        sa.Column("to_address", sa.String(length=42), nullable=False),
        sa.Column("value", sa.String(length=78), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transfers")),
        sa.UniqueConstraint(
            "chain_id",
            "block_hash",
            "tx_hash",
            "log_index",
            name=op.f("uq_ledger_transfers_chain_id_block_hash_tx_hash_log_index"),
        ),
    )
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_transfers_block", ["chain_id", "block_number"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_transfers_from", ["chain_id", "from_address", "id"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_transfers_to", ["chain_id", "to_address", "id"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_transfers_token", ["chain_id", "token", "id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transfers_token")
        batch_op.drop_index("ix_ledger_transfers_to")
        batch_op.drop_index("ix_ledger_transfers_from")
        batch_op.drop_index("ix_ledger_transfers_block")

    op.drop_table("ledger_transfers")
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transactions_to")
        batch_op.drop_index("ix_ledger_transactions_from")
        batch_op.drop_index("ix_ledger_transactions_block")

    op.drop_table("ledger_transactions")
    with op.batch_alter_table("ledger_events", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_events_tx")
        batch_op.drop_index("ix_ledger_events_name")
        batch_op.drop_index("ix_ledger_events_block")

    op.drop_table("ledger_events")
    op.drop_table("ledger_cursors")
    with op.batch_alter_table("ledger_blocks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_blocks_hash"))

    op.drop_table("ledger_blocks")
    op.drop_table("ledger_balances")
