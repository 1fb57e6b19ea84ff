"""scheduler bookkeeping: ticket_sla, an index on tickets.updated_at

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mailgate.db.models

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


INDEXES = {
    "ix_ticket_sla_state": ["m_status", "m_queue"],
    "ix_ticket_sla_fr": [
        "m_queue",
        "paused_since",
        "tier_seen",
        "fr_breached_at",
        "m_first_response_at",
        "resp_start",
    ],
    "ix_ticket_sla_res": ["m_queue", "paused_since", "tier_seen", "res_breached_at", "res_start"],
    "ix_ticket_sla_tier": [
        "m_queue",
        "paused_since",
        "tier_seen",
        "tier_breached_at",
        "tier_start",
    ],
    "ix_ticket_sla_escalated": ["tier_seen", "m_queue", "m_updated_at"],
    "ix_ticket_sla_touched": ["m_queue", "m_updated_at"],
    "ix_ticket_sla_resume": ["m_status", "paused_since"],
    "ix_ticket_sla_growth": ["m_queue", "paused_since", "steps_done", "grow_from"],
}


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, mailgate.db.models.UtcDateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "ticket_sla",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("m_queue", sa.String(length=40), nullable=False),
        sa.Column("m_status", sa.String(length=16), nullable=False),
        _when("m_updated_at", nullable=False),
        _when("m_customer_at"),
        _when("m_answer_at"),
        _when("m_first_response_at"),
        sa.Column("m_assignee", sa.String(length=40), nullable=True),
        sa.Column("tier_seen", sa.String(length=2), nullable=False),
        sa.Column("set_priority", sa.Integer(), nullable=False),
        sa.Column("class_priority", sa.Integer(), nullable=False),
        sa.Column("base_priority", sa.Integer(), nullable=False),
        sa.Column("steps_done", sa.Integer(), nullable=False),
        _when("wait_since"),
        _when("grow_from"),
        _when("resp_start", nullable=False),
        _when("res_start", nullable=False),
        _when("tier_start", nullable=False),
        _when("paused_since"),
        _when("fr_breached_at"),
        _when("res_breached_at"),
        _when("tier_breached_at"),
        _when("reminded_at"),
        _when("shift_flagged_at"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("ticket_id"),
    )
    for name, cols in INDEXES.items():
        op.create_index(name, "ticket_sla", cols)
    # the scheduler reads only the tickets changed since its last sync (models.py: index=True)
    op.create_index("ix_tickets_updated_at", "tickets", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_tickets_updated_at", table_name="tickets")
    for name in INDEXES:
        op.drop_index(name, table_name="ticket_sla")
    op.drop_table("ticket_sla")
