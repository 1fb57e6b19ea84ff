"""Several reads whose parameters are all known, sent together: one round trip.

On PostgreSQL the SELECTs (with the writes waiting in `fast.pipelined` before them, in
their order) go in one psycopg 3 pipeline and their results come back with one sync;
elsewhere (SQLite, in-process) they run one after another on `fast.rows`. Either way
each result is what `fast.named` gives for that statement alone: the same compiled plan,
the same type conversion, a driver error raised as SQLAlchemy raises it.

Built on `fast`'s plans (its module doc: statements built once at import).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from mailgate.store import fast

Read = tuple[Any, Mapping[str, Any]]  # a statement built once, and its parameters


def rows_together(conn: Connection, queries: Sequence[Read]) -> list[list[Any]]:
    """The rows of each query, as `fast.named` returns them, in the order given."""
    if conn.dialect.name != "postgresql" or len(queries) < 2:
        return [fast.named(conn, stmt, params) for stmt, params in queries]
    bound = [fast.bind(conn, stmt, params) for stmt, params in queries]
    dbapi_conn = conn.connection.dbapi_connection
    cursors = [dbapi_conn.cursor() for _ in bound]  # type: ignore[union-attr]
    sql, params = bound[0][0].sql, bound[0][1]
    try:
        with conn.connection.driver_connection.pipeline():  # type: ignore[union-attr]
            waiting = conn.info.get(fast.WAITING)
            if waiting:  # first, in the same round trip
                fast.queue_waiting(dbapi_conn, waiting)
            for cursor, (plan, params) in zip(cursors, bound, strict=True):
                sql = plan.sql
                cursor.execute(sql, params)
                fast.StatementCount.n += 1
            raw = [cursor.fetchall() for cursor in cursors]  # the first fetch syncs them all
    except conn.dialect.loaded_dbapi.Error as e:
        raise fast.driver_error(conn, e, sql, params) from e
    finally:
        for cursor in cursors:
            cursor.close()
    return [
        [plan.row(*r) for r in fast.converted(plan, found)]
        for (plan, _), found in zip(bound, raw, strict=True)
    ]
