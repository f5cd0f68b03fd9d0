"""participant accounts

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "participant_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participant_accounts")),
        sa.UniqueConstraint(
            "chain_id", "address", name=op.f("uq_participant_accounts_chain_id_address")
        ),
    )
    with op.batch_alter_table("participant_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_participant_accounts_owner"), ["owner"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("participant_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_participant_accounts_owner"))
    op.drop_table("participant_accounts")
