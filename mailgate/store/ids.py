"""The ids of the rows an optimistic batch holds back (store/batch.py), given by the batch.

SQLite: the batch holds the database's write lock from its BEGIN IMMEDIATE (db/engine.py),
so nobody else inserts; these tables have no AUTOINCREMENT, so SQLite's own choice for a
new row is the largest id + 1, and the batch reads the largest once and counts up (any
statement that may insert otherwise writes the held rows first, and the count starts
again: store/batch.py). PostgreSQL: ids come from the table's own sequence, which other
writers share (no clash); a block of the batch's size in one statement for articles and
outbox rows (gaps are harmless), one at a time for tickets, whose numbers customers see.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, text

from mailgate.db.tables import metadata
from mailgate.store import fast
from mailgate.store.batch import BatchState


@functools.cache
def _largest(table: str) -> Any:
    stmt = select(func.max(metadata.tables[table].c.id))
    fast.SEES_BATCH.add(stmt)  # run when none of the table's rows are held
    return stmt


@functools.cache
def _block(table: str) -> Any:
    seq = f"pg_get_serial_sequence('{table}', 'id')"
    stmt = text(f"SELECT nextval({seq}) FROM generate_series(1, :n)").bindparams(bindparam("n"))
    fast.SEES_BATCH.add(stmt)
    return stmt


def new_id(conn: Connection, batch: BatchState, table: str) -> int:
    """The id of a new row of `table` (tickets, articles, outbox) the batch holds back."""
    if conn.dialect.name == "sqlite":
        if table not in batch.next_ids:
            batch.next_ids[table] = (fast.scalar(conn, _largest(table), {}) or 0) + 1
        batch.live.add(table)  # an insert of someone else's would take the same id
        found = batch.next_ids[table]
        batch.next_ids[table] = found + 1
        return found
    free = batch.free_ids.setdefault(table, [])
    if not free:
        n = 1 if table == "tickets" else batch.size
        free.extend(reversed(fast.scalars(conn, _block(table), {"n": n})))
    return int(free.pop())
