"""ledger vehicle records

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "ledger_vehicle_records",
        sa.Column("title", sa.String(length=78), nullable=False),
        sa.Column("contract", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_vehicle_records")),
        sa.UniqueConstraint(
            "chain_id",
            "block_hash",
            "tx_hash",
            "log_index",
            name=op.f("uq_ledger_vehicle_records_chain_id_block_hash_tx_hash_log_index"),
        ),
    )
    with op.batch_alter_table("ledger_vehicle_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_vehicle_records_block", ["chain_id", "block_number"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_vehicle_records_title", ["chain_id", "title", "id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("ledger_vehicle_records", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_vehicle_records_title")
        batch_op.drop_index("ix_ledger_vehicle_records_block")

    op.drop_table("ledger_vehicle_records")
