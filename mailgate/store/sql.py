"""The one dialect-dependent statement the writers share: INSERT ... ON CONFLICT DO NOTHING."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


@functools.cache
def insert_ignore_stmt(dialect: str, table: Table) -> Any:
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    return ins(table).on_conflict_do_nothing()


def insert_ignore(
    conn: Connection, table: Table, rows: list[dict[str, Any]] | dict[str, Any]
) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL; returns the result."""
    if not rows:
        return None
    return conn.execute(insert_ignore_stmt(conn.dialect.name, table), rows)
