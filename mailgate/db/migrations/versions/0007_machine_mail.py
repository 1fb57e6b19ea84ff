"""machine mail: address_states (bounces pause automatic mail), junk (the quarantine)

Revision ID: 0007_machine_mail
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mailgate.db.models

revision = "0007_machine_mail"
down_revision = "0006"
branch_labels = None
depends_on = None

Utc = mailgate.db.models.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "address_states",
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("hard", sa.Boolean(), nullable=False),
        sa.Column("bounces", sa.Integer(), nullable=False),
        sa.Column("delays", sa.Integer(), nullable=False),
        sa.Column("paused_until", Utc(), nullable=True),
        sa.Column("first_failed_at", Utc(), nullable=True),
        sa.Column("last_report_at", Utc(), nullable=False),
        sa.Column("last_status", sa.String(length=20), nullable=False),
        sa.Column("last_diagnostic", sa.Text(), nullable=False),
        sa.Column("last_ticket_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("address"),
    )
    op.create_table(
        "junk",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", Utc(), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw_sha256", sa.String(length=64), nullable=False),
        sa.Column("from_addr", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("envelope", sa.JSON(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("released_at", Utc(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("raw_sha256"),
    )
    op.create_index("ix_junk_created", "junk", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_junk_created", table_name="junk")
    op.drop_table("junk")
    op.drop_table("address_states")
