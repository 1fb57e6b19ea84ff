"""pgp: decrypted PGP parts of inbound mail, stored apart from the customer-visible body

Revision ID: 0004
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mailgate.db.models

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pgp_secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=40), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source_name", sa.String(length=255), nullable=False),
        sa.Column("ciphertext_sha256", sa.String(length=64), nullable=True),
        sa.Column("packet_sha256", sa.String(length=64), nullable=True),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("signature", sa.JSON(), nullable=True),
        sa.Column("created_at", mailgate.db.models.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"]),
        sa.ForeignKeyConstraint(["ciphertext_sha256"], ["blobs.sha256"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("pgp_secrets", schema=None) as batch_op:
        batch_op.create_index("ix_pgp_secrets_ticket_id", ["ticket_id"], unique=False)
        batch_op.create_index("ix_pgp_secrets_article_id", ["article_id"], unique=False)
        batch_op.create_index("ix_pgp_secrets_packet_sha256", ["packet_sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pgp_secrets", schema=None) as batch_op:
        batch_op.drop_index("ix_pgp_secrets_packet_sha256")
        batch_op.drop_index("ix_pgp_secrets_article_id")
        batch_op.drop_index("ix_pgp_secrets_ticket_id")
    op.drop_table("pgp_secrets")
