"""ledger payments refunds holds merchants

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "ledger_hold_movements",
        sa.Column("hold_id", sa.String(length=66), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("payer", sa.String(length=42), nullable=False),
        sa.Column("merchant", sa.String(length=42), nullable=False),
        sa.Column("token", sa.String(length=42), nullable=False),
        sa.Column("amount", sa.String(length=78), nullable=False),
        sa.Column("returned", sa.String(length=78), nullable=False),
        sa.Column("remaining", sa.String(length=78), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_hold_movements")),
        sa.UniqueConstraint(
            "chain_id",
            "block_hash",
            "tx_hash",
            "log_index",
            name=op.f("uq_ledger_hold_movements_chain_id_block_hash_tx_hash_log_index"),
        ),
    )
    with op.batch_alter_table("ledger_hold_movements", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_hold_movements_block", ["chain_id", "block_number"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_hold_movements_hold", ["chain_id", "hold_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_hold_movements_merchant", ["chain_id", "merchant", "id"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_hold_movements_payer", ["chain_id", "payer", "id"], unique=False
        )

    op.create_table(
        "ledger_merchants",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("merchant", sa.String(length=42), nullable=False),
        sa.Column("category", sa.Integer(), nullable=False),
        sa.Column("payout", sa.String(length=42), nullable=False),
        sa.Column("fee_bps", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("registered_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "merchant", name=op.f("pk_ledger_merchants")),
    )
    op.create_table(
        "ledger_payments",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("reference", sa.String(length=66), nullable=False),
        sa.Column("payer", sa.String(length=42), nullable=False),
        sa.Column("merchant", sa.String(length=42), nullable=False),
        sa.Column("token", sa.String(length=42), nullable=False),
        sa.Column("gross", sa.String(length=78), nullable=False),
        sa.Column("fee", sa.String(length=78), nullable=False),
        sa.Column("net", sa.String(length=78), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_payments")),
        sa.UniqueConstraint(
            "chain_id",
            "block_hash",
            "tx_hash",
            "log_index",
            name=op.f("uq_ledger_payments_chain_id_block_hash_tx_hash_log_index"),
        ),
    )
    with op.batch_alter_table("ledger_payments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_payments_block", ["chain_id", "block_number"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_payments_merchant", ["chain_id", "merchant", "timestamp"], unique=False
        )
        batch_op.create_index("ix_ledger_payments_payer", ["chain_id", "payer", "id"], unique=False)
        batch_op.create_index(
            "ix_ledger_payments_reference", ["chain_id", "reference"], unique=False
        )

    op.create_table(
        "ledger_refunds",
        sa.Column("invoice_id", sa.String(length=66), nullable=False),
        sa.Column("payer", sa.String(length=42), nullable=False),
        sa.Column("merchant", sa.String(length=42), nullable=False),
        sa.Column("token", sa.String(length=42), nullable=False),
        sa.Column("amount", sa.String(length=78), nullable=False),
        sa.Column("refunded", sa.String(length=78), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_refunds")),
        sa.UniqueConstraint(
            "chain_id",
            "block_hash",
            "tx_hash",
            "log_index",
            name=op.f("uq_ledger_refunds_chain_id_block_hash_tx_hash_log_index"),
        ),
    )
    with op.batch_alter_table("ledger_refunds", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_refunds_block", ["chain_id", "block_number"], unique=False)
        batch_op.create_index("ix_ledger_refunds_invoice", ["chain_id", "invoice_id"], unique=False)
        batch_op.create_index(
            "ix_ledger_refunds_merchant", ["chain_id", "merchant", "timestamp"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("ledger_refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_refunds_merchant")
        batch_op.drop_index("ix_ledger_refunds_invoice")
        batch_op.drop_index("ix_ledger_refunds_block")

    op.drop_table("ledger_refunds")
    with op.batch_alter_table("ledger_payments", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_payments_reference")
        batch_op.drop_index("ix_ledger_payments_payer")
        batch_op.drop_index("ix_ledger_payments_merchant")
        batch_op.drop_index("ix_ledger_payments_block")

    op.drop_table("ledger_payments")
    op.drop_table("ledger_merchants")
    with op.batch_alter_table("ledger_hold_movements", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_hold_movements_payer")
        batch_op.drop_index("ix_ledger_hold_movements_merchant")
        batch_op.drop_index("ix_ledger_hold_movements_hold")
        batch_op.drop_index("ix_ledger_hold_movements_block")

    op.drop_table("ledger_hold_movements")
