"""agent mails: every authenticated agent mail, for replay protection and the record

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mailgate.db.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_mails",
        sa.Column("id", sa.Integer(), nullable=False),
        # sha256 of the normalized Message-ID: a Message-ID is processed at most once
        sa.Column("message_key", sa.String(length=64), nullable=False),
        # sha256 of a PGP-signed body: the same signature is accepted once, whatever headers
        sa.Column("content_key", sa.String(length=64), nullable=True),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("agent", sa.String(length=40), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("received_at", mailgate.db.models.UtcDateTime(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("raw_sha256", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["raw_sha256"], ["blobs.sha256"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_key", name="uq_agent_mails_message_key"),
        sa.UniqueConstraint("content_key", name="uq_agent_mails_content_key"),
    )
    with op.batch_alter_table("agent_mails", schema=None) as batch_op:
        batch_op.create_index("ix_agent_mails_agent_received", ["agent", "received_at"])
        batch_op.create_index("ix_agent_mails_ticket_id", ["ticket_id"])


def downgrade() -> None:
    with op.batch_alter_table("agent_mails", schema=None) as batch_op:
        batch_op.drop_index("ix_agent_mails_ticket_id")
        batch_op.drop_index("ix_agent_mails_agent_received")
    op.drop_table("agent_mails")
