"""satisfaction: the surveys sent with resolving and closing mails, and their ratings

Revision ID: 0007_satisfaction
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mailgate.db.models

revision = "0007_satisfaction"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "satisfaction_surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=40), nullable=False),
        sa.Column("agent", sa.String(length=40), nullable=True),
        sa.Column("requester_addr", sa.String(length=320), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("asked_at", mailgate.db.models.UtcDateTime(), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("rated_at", mailgate.db.models.UtcDateTime(), nullable=True),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_satisfaction_surveys_ticket_id", "satisfaction_surveys", ["ticket_id"], unique=False
    )
    op.create_index("ix_satisfaction_rated", "satisfaction_surveys", ["rated_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_satisfaction_rated", table_name="satisfaction_surveys")
    op.drop_index("ix_satisfaction_surveys_ticket_id", table_name="satisfaction_surveys")
    op.drop_table("satisfaction_surveys")
