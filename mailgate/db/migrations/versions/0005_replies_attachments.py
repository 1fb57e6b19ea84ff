"""article new text (what a customer wrote in a mail, apart from the quoted history);
attachment content_id and size (notifications list and carry attachments)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("new_text", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(
            sa.Column("content_id", sa.String(length=255), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("size", sa.Integer(), nullable=False, server_default="0"))
    # attachments stored before: their size from the blob
    op.execute(
        "UPDATE attachments SET size = COALESCE((SELECT length(data) FROM blobs"
        " WHERE blobs.sha256 = attachments.blob_sha256), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.drop_column("size")
        batch.drop_column("content_id")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("new_text")
