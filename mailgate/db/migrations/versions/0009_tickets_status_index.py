"""tickets: drop ix_tickets_status, the leading column of ix_tickets_open_order (status,
priority, created_at), which answers every lookup by status on SQLite and PostgreSQL; the
second index cost each ticket insert and each status change a B-tree write (about 2.5 µs
an insert on SQLite, docs/performance.md "The batch's size and the tickets' indexes")

Revision ID: 0009_tickets_status_index
Revises: 0008_search_by_batch
"""

from __future__ import annotations

from alembic import op

revision = "0009_tickets_status_index"
down_revision = "0008_search_by_batch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_tickets_status", table_name="tickets")


def downgrade() -> None:
    op.create_index("ix_tickets_status", "tickets", ["status"], unique=False)
