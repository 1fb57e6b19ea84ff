"""search: indexes for the search filters; full-text search per dialect (SQLite FTS5
tables kept in step by triggers, PostgreSQL GIN indexes over to_tsvector expressions)

Revision ID: 0007_search
Revises: 0006
"""

from __future__ import annotations

from alembic import op

from mailgate.db.models_search import (
    ARTICLES_FTS,
    PG_ARTICLES_DOCUMENT,
    PG_ARTICLES_FTS_INDEX,
    PG_TICKETS_DOCUMENT,
    PG_TICKETS_FTS_INDEX,
    TICKETS_FTS,
)

revision = "0007_search"
down_revision = "0006"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_tickets_created_at", "tickets", ["created_at"]),
    ("ix_tickets_closed_at", "tickets", ["closed_at"]),
    ("ix_tickets_category", "tickets", ["category"]),
    ("ix_ticket_tags_tag", "ticket_tags", ["tag"]),
    ("ix_ticket_ccs_address", "ticket_ccs", ["address"]),
)


def _sqlite_fts(name: str, table: str, columns: tuple[str, ...]) -> list[str]:
    """An external-content FTS5 table over `table`, its triggers, and the rows already there."""
    cols = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    delete_old = f"INSERT INTO {name}({name}, rowid, {cols}) VALUES ('delete', old.id, {old});"
    insert_new = f"INSERT INTO {name}(rowid, {cols}) VALUES (new.id, {new});"
    return [
        f"CREATE VIRTUAL TABLE {name} USING fts5({cols}, content='{table}', "
        "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER {name}_ai AFTER INSERT ON {table} BEGIN {insert_new} END",
        f"CREATE TRIGGER {name}_ad AFTER DELETE ON {table} BEGIN {delete_old} END",
        f"CREATE TRIGGER {name}_au AFTER UPDATE OF {cols} ON {table} "
        f"BEGIN {delete_old} {insert_new} END",
        f"INSERT INTO {name}({name}) VALUES ('rebuild')",
    ]


def upgrade() -> None:
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for stmt in _sqlite_fts(ARTICLES_FTS, "articles", ("subject", "body_text")):
            op.execute(stmt)
        for stmt in _sqlite_fts(TICKETS_FTS, "tickets", ("title",)):
            op.execute(stmt)
    elif dialect == "postgresql":
        op.execute(
            f"CREATE INDEX {PG_ARTICLES_FTS_INDEX} ON articles USING gin ({PG_ARTICLES_DOCUMENT})"
        )
        op.execute(
            f"CREATE INDEX {PG_TICKETS_FTS_INDEX} ON tickets USING gin ({PG_TICKETS_DOCUMENT})"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in (ARTICLES_FTS, TICKETS_FTS):
            for suffix in ("ai", "ad", "au"):
                op.execute(f"DROP TRIGGER IF EXISTS {name}_{suffix}")
            op.execute(f"DROP TABLE IF EXISTS {name}")
    elif dialect == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {PG_ARTICLES_FTS_INDEX}")
        op.execute(f"DROP INDEX IF EXISTS {PG_TICKETS_FTS_INDEX}")
    for name, table, _ in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
