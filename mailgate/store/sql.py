"""The one dialect-dependent statement the writers share: INSERT ... ON CONFLICT DO NOTHING."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mailgate.store import fast


@functools.cache
def insert_ignore_stmt(dialect: str, table: Table) -> Any:
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    return ins(table).on_conflict_do_nothing()


def insert_ignore(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]] | dict[str, Any],
    *,
    count: bool = True,  # False: nobody reads the result (the write may wait: store/fast.py)
) -> int:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL; the rows inserted (one
    row: exactly; several: what the driver reports for the executemany; 0 unless `count`)."""
    if not rows:
        return 0
    stmt = insert_ignore_stmt(conn.dialect.name, table)
    if isinstance(rows, dict) or len(rows) == 1:  # the common case: on the cursor directly
        row = rows if isinstance(rows, dict) else rows[0]
        if not count:
            fast.write(conn, stmt, row)
            return 0
        return fast.run(conn, stmt, row)
    return int(conn.execute(stmt, rows).rowcount)
