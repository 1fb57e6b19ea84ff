"""leases: one daemon at a time per IMAP mailbox (and the scheduler on SQLite)

Revision ID: 0007_leases
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mailgate.db.models

revision = "0007_leases"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", mailgate.db.models.UtcDateTime(), nullable=False),
        sa.Column("acquired_at", mailgate.db.models.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("leases")
