"""search by batch: articles and tickets an optimistic batch inserted wait for its flush to
index them for full-text search (SQLite: one INSERT ... SELECT per table and batch, not
one FTS5 insert per row); see db/models_search.py

Revision ID: 0008_search_by_batch
Revises: 0007_search
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailgate.db.models_search import ARTICLES_FTS, TICKETS_FTS

revision = "0008_search_by_batch"
down_revision = "0007_search"
branch_labels = None
depends_on = None

_FULL_TEXT = (
    (ARTICLES_FTS, "articles", ("subject", "body_text")),
    (TICKETS_FTS, "tickets", ("title",)),
)


def _triggers(name: str, table: str, columns: tuple[str, ...], pending: bool) -> list[str]:
    """The FTS5 table's triggers; with `pending`, a row waiting for its batch's flush is
    left alone (the flush indexes what the row holds then)."""
    cols = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    delete_old = f"INSERT INTO {name}({name}, rowid, {cols}) VALUES ('delete', old.id, {old});"
    insert_new = f"INSERT INTO {name}(rowid, {cols}) VALUES (new.id, {new});"
    when_new = " WHEN NOT new.search_pending" if pending else ""
    when_old = " WHEN NOT old.search_pending" if pending else ""
    return [
        *(f"DROP TRIGGER IF EXISTS {name}_{suffix}" for suffix in ("ai", "ad", "au")),
        f"CREATE TRIGGER {name}_ai AFTER INSERT ON {table}{when_new} BEGIN {insert_new} END",
        f"CREATE TRIGGER {name}_ad AFTER DELETE ON {table}{when_old} BEGIN {delete_old} END",
        f"CREATE TRIGGER {name}_au AFTER UPDATE OF {cols} ON {table}{when_old} "
        f"BEGIN {delete_old} {insert_new} END",
    ]


def upgrade() -> None:
    for _, table, _ in _FULL_TEXT:
        op.add_column(
            table, sa.Column("search_pending", sa.Boolean(), server_default="0", nullable=False)
        )
        op.create_index(
            f"ix_{table}_search_pending",
            table,
            ["id"],
            sqlite_where=sa.text("search_pending"),
            postgresql_where=sa.text("search_pending"),
        )
    if op.get_bind().dialect.name == "sqlite":
        for name, table, columns in _FULL_TEXT:
            for stmt in _triggers(name, table, columns, pending=True):
                op.execute(stmt)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for name, table, columns in _FULL_TEXT:
        if sqlite:  # none is pending outside a batch's transaction; if one were, index it
            cols = ", ".join(columns)
            op.execute(
                f"INSERT INTO {name}(rowid, {cols}) SELECT id, {cols} FROM {table} "
                "WHERE search_pending"
            )
            for stmt in _triggers(name, table, columns, pending=False):
                op.execute(stmt)
        op.drop_index(f"ix_{table}_search_pending", table_name=table)
        op.drop_column(table, "search_pending")
