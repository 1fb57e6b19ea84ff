"""outbound: outbox priority class, a sender's lease, per-recipient results, held rows;
send_log (what the governor counts)

Revision ID: 0006
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mailgate.db.models

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None

CUSTOMER_KINDS = ("ack", "answer", "closed", "escalated")
LATER_KINDS = ("reminder", "digest")


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("priority", sa.SmallInteger(), server_default="1", nullable=False)
        )
        batch.add_column(sa.Column("claim_token", sa.String(length=40), nullable=True))
        batch.add_column(
            sa.Column("claimed_until", mailgate.db.models.UtcDateTime(), nullable=True)
        )
        batch.add_column(sa.Column("rcpt_results", sa.JSON(), server_default="{}", nullable=False))
        batch.create_index("ix_outbox_class", ["status", "priority", "next_attempt_at"])
    outbox = sa.table("outbox", sa.column("kind", sa.String), sa.column("priority", sa.Integer))
    op.execute(outbox.update().where(outbox.c.kind.in_(CUSTOMER_KINDS)).values(priority=0))
    op.execute(outbox.update().where(outbox.c.kind.in_(LATER_KINDS)).values(priority=2))
    op.create_table(
        "send_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("created_at", mailgate.db.models.UtcDateTime(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("queue", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_send_log_address", "send_log", ["address", "created_at"])
    op.create_index("ix_send_log_ticket", "send_log", ["address", "ticket_id", "created_at"])
    op.create_index("ix_send_log_queue", "send_log", ["queue", "kind", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_send_log_queue", table_name="send_log")
    op.drop_index("ix_send_log_ticket", table_name="send_log")
    op.drop_index("ix_send_log_address", table_name="send_log")
    op.drop_table("send_log")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_class")
        batch.drop_column("rcpt_results")
        batch.drop_column("claimed_until")
        batch.drop_column("claim_token")
        batch.drop_column("priority")
