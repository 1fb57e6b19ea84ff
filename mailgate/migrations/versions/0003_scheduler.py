"""scheduler bookkeeping: ticket_sla

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mailgate.models

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, mailgate.models.UtcDateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "ticket_sla",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("class_priority", sa.Integer(), nullable=False),
        sa.Column("base_priority", sa.Integer(), nullable=False),
        sa.Column("set_priority", sa.Integer(), nullable=False),
        _when("wait_since"),
        _when("grow_from"),
        _when("resp_start", nullable=False),
        _when("res_start", nullable=False),
        sa.Column("tier_seen", sa.String(length=2), nullable=False),
        _when("tier_start", nullable=False),
        _when("paused_since"),
        _when("fr_breached_at"),
        _when("res_breached_at"),
        _when("tier_breached_at"),
        _when("reminded_at"),
        _when("shift_flagged_at"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("ticket_id"),
    )


def downgrade() -> None:
    op.drop_table("ticket_sla")
