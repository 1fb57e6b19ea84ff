"""The worker's hot-path statements, compiled once and run on the DBAPI cursor.

SQLAlchemy's `Connection.execute` costs about 30 µs per statement in Python on this
machine (the execution context, parameter and result objects, events) where the sqlite3
cursor takes 2-7 µs for the same indexed statement; a message runs several. For the
statements the worker runs for every message, this module keeps what SQLAlchemy would
work out on each call: the SQL text of the Core statement for the connection's dialect
and the parameter names given, the order of its placeholders, and each parameter's and
column's type conversion (the same `TypeEngine` processors SQLAlchemy uses, so a
`UtcDateTime` or JSON column reads and writes exactly as elsewhere), built into one
function per statement. The processors remember what they converted (a message's `now`
goes to several columns of several statements, and again to the batch's flush:
store/remembered.py). The statement runs on the connection's own DBAPI connection, inside
its transaction.

On PostgreSQL, inside an optimistic batch (`pipelined`), a write nobody reads the result
of (`write`) is not sent at once: it waits for the next statement, and they go together
in psycopg's pipeline mode, one round trip for all. Whatever runs next on the connection
(a read here, any SQLAlchemy execute, the batch's end) sends what waits first, so the
order of statements is the order they were written in; an error in a waiting write is
raised by the statement that sent it, and the batch is redone one message at a time.

A driver error is raised as SQLAlchemy raises it (`sqlalchemy.exc.DBAPIError.instance`:
OperationalError, IntegrityError, ...), and a lost connection is invalidated, so the
worker's retry and isolation paths see what they always saw.

Only for statements built once at import (module constants): plans are cached by the
statement object, the dialect and the parameter names.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import BindParameter, Connection, Engine, Select, bindparam, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert

from mailgate.store.remembered import Processor, shared
from mailgate.store.statement_tables import tables_of


@dataclass(frozen=True)
class Plan:
    sql: str
    positional: bool
    names: tuple[str, ...]  # placeholders in order (positional) or the names (named)
    sources: tuple[tuple[str | None, Any], ...]  # per name: parameter key, or None + constant
    binds: tuple[Processor, ...]
    results: tuple[Processor, ...]  # per result column (SELECT or RETURNING)
    row: Any  # a named tuple type of the result columns (`named`)
    convert: Callable[[Mapping[str, Any]], Any]  # params -> what the cursor is given
    tables: frozenset[str] | None  # what it touches (None: any); empty if it sees the batch
    writes: bool  # not a SELECT


class StatementCount:
    """Statements run here (the bench adds them to what SQLAlchemy's events count)."""

    n = 0


_plans: dict[tuple[Any, str, tuple[str, ...]], Plan] = {}
MAX_PLANS = 1000  # the hot path has a few dozen; SQLAlchemy's own cache keeps 500


def _plan(dialect: Dialect, stmt: Any, keys: tuple[str, ...]) -> Plan:
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
    positional = bool(compiled.positional)
    rendered = dict.fromkeys(compiled.bind_names.values())  # as the SQL names them
    names = tuple(compiled.positiontup) if positional else tuple(rendered)
    sources = []
    for name in names:
        bind = compiled.binds[name]
        if bind.key in keys:
            sources.append((bind.key, None))
        elif not bind.required:  # a value the statement carries (a literal, a default)
            sources.append((None, bind.effective_value))
        else:
            raise ValueError(f"fast statement {str(stmt)[:60]!r}: no value for {bind.key!r}")
    if isinstance(stmt, Insert):  # SQLAlchemy would fill in the default; the cursor cannot
        left = [c.key for c in stmt.table.columns if c.default is not None and c.key not in keys]
        if left:
            raise ValueError(f"fast statement {str(stmt)[:60]!r}: no value for {left[0]!r}")
    if "POSTCOMPILE" in compiled.string:
        raise ValueError(f"fast statement {str(stmt)[:60]!r}: expanding IN lists are not fixed SQL")
    escaped = getattr(compiled, "escaped_bind_names", {}) or {}
    columns = getattr(stmt, "exported_columns", ())
    binds = tuple(shared(dialect, compiled.binds[n].type) for n in names)
    names = tuple(escaped.get(n, n) for n in names)
    return Plan(
        sql=compiled.string,
        positional=positional,
        names=names,
        sources=tuple(sources),
        binds=binds,
        results=tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        ),
        row=namedtuple("Row", [c.key for c in columns], rename=True),  # noqa: PYI024
        convert=_converter(tuple(sources), binds, positional, names),
        tables=frozenset() if stmt in SEES_BATCH else tables_of(stmt),
        writes=not isinstance(stmt, Select),
    )


# statements that take the rows a batch holds back into account themselves (store/batch.py)
SEES_BATCH: set[Any] = set()
BEFORE = "mailgate.fast.before"  # conn.info: called with what a statement touches, writes
LIVE = "mailgate.fast.live"  # conn.info: the tables with rows held back (BEFORE only then)


def _converter(
    sources: tuple[tuple[str | None, Any], ...],
    binds: tuple[Processor, ...],
    positional: bool,
    names: tuple[str, ...],
) -> Callable[[Mapping[str, Any]], Any]:
    """params -> the statement's values in placeholder order, converted (built once)."""
    keys = [key for key, _ in sources]
    procs = [(i, p) for i, p in enumerate(binds) if p is not None]
    if len(keys) > 1 and None not in keys:
        get = itemgetter(*keys)

        def values(params: Mapping[str, Any]) -> list[Any]:
            return list(get(params))

    else:

        def values(params: Mapping[str, Any]) -> list[Any]:
            return [params[key] if key is not None else c for key, c in sources]

    def convert(params: Mapping[str, Any]) -> Any:
        found = values(params)
        for i, process in procs:
            found[i] = process(found[i])
        return found if positional else dict(zip(names, found, strict=True))

    return convert


def _plan_for(conn: Connection, stmt: Any, keys: tuple[str, ...]) -> Plan:
    key = (stmt, conn.dialect.name, keys)
    plan = _plans.get(key)
    if plan is None:
        if len(_plans) >= MAX_PLANS:  # a statement built per call would grow it: bounded
            _plans.clear()
        plan = _plans[key] = _plan(conn.dialect, stmt, keys)
    return plan


def bind(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> tuple[Plan, Any]:
    """The statement's plan and its parameters converted for the driver (after the rows
    a batch holds back for the tables it touches: `BEFORE`)."""
    plan = _plan_for(conn, stmt, tuple(params))
    before = conn.info.get(BEFORE)
    if before is not None and plan.tables != frozenset() and conn.info.get(LIVE):
        before(conn, plan.tables, plan.writes)
    return plan, plan.convert(params)


def _run(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> tuple[Plan, Any]:
    plan, bound = bind(conn, stmt, params)
    dbapi_conn = conn.connection.dbapi_connection
    cursor = dbapi_conn.cursor()  # type: ignore[union-attr]
    waiting = conn.info.get(WAITING)
    try:
        if waiting:
            with conn.connection.driver_connection.pipeline():  # type: ignore[union-attr]
                queue_waiting(dbapi_conn, waiting)
                cursor.execute(plan.sql, bound)
        else:
            cursor.execute(plan.sql, bound)
    except conn.dialect.loaded_dbapi.Error as e:
        cursor.close()
        raise driver_error(conn, e, plan.sql, bound) from e
    StatementCount.n += 1
    return plan, cursor


def driver_error(conn: Connection, e: Exception, sql: str, bound: Any) -> DBAPIError:
    """The driver's error as SQLAlchemy raises it; a lost connection is invalidated."""
    dialect = conn.dialect
    lost = dialect.is_disconnect(e, conn.connection.dbapi_connection, None)
    if lost:
        conn.invalidate(e)
    return DBAPIError.instance(
        sql, bound, e, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
    )


WAITING = "mailgate.fast.waiting"  # conn.info: writes waiting for the next statement


def queue_waiting(dbapi_conn: Any, waiting: list[tuple[str, Any]]) -> None:
    """Queue the waiting writes in the open pipeline (the caller's block sends them)."""
    cursor = dbapi_conn.cursor()
    for sql, bound in waiting:
        cursor.execute(sql, bound)
        StatementCount.n += 1
    waiting.clear()


def send_waiting(conn: Connection) -> None:
    """Send the writes waiting on `conn` now, in one pipeline (a no-op when none wait)."""
    waiting = conn.info.get(WAITING)
    if not waiting:
        return
    sql, bound = waiting[-1]
    try:
        with conn.connection.driver_connection.pipeline():  # type: ignore[union-attr]
            queue_waiting(conn.connection.dbapi_connection, waiting)
    except conn.dialect.loaded_dbapi.Error as e:
        waiting.clear()
        raise driver_error(conn, e, sql, bound) from e


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """On PostgreSQL: `write`s wait for the next statement (module doc); the rest of the
    writes are sent when the block ends normally, dropped when it raises (the caller's
    transaction is rolled back)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.info[WAITING] = []
    try:
        yield
        send_waiting(conn)
    finally:
        conn.info.pop(WAITING, None)


@contextmanager
def writes_together(conn: Connection) -> Iterator[None]:
    """On PostgreSQL: the waiting writes and every `run_many` of the block in one pipeline,
    one round trip when the block ends (a batch's flush); the first error is raised, by the
    statement that noticed it or at the end. Elsewhere the block runs as it is."""
    if conn.dialect.name != "postgresql":
        yield
        return
    try:
        with conn.connection.driver_connection.pipeline():  # type: ignore[union-attr]
            waiting = conn.info.get(WAITING)
            if waiting:
                queue_waiting(conn.connection.dbapi_connection, waiting)
            yield
    except conn.dialect.loaded_dbapi.Error as e:
        raise driver_error(conn, e, "(the writes sent together)", None) from e


@event.listens_for(Engine, "before_execute")
def _before_sqlalchemy(conn: Connection, stmt: Any, *args: Any) -> None:
    """Any statement SQLAlchemy runs goes after the rows held back and the waiting writes."""
    before = conn.info.get(BEFORE)
    if before is not None and conn.info.get(LIVE):
        before(conn, tables_of(stmt), not isinstance(stmt, Select))
    if conn.info.get(WAITING):
        send_waiting(conn)


def write(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> None:
    """An INSERT/UPDATE/DELETE whose result nobody reads: sent now, or with the next
    statement inside `pipelined` on PostgreSQL."""
    waiting = conn.info.get(WAITING)
    if waiting is None:
        run(conn, stmt, params)
        return
    plan, bound = bind(conn, stmt, params)
    waiting.append((plan.sql, bound))


# IN lists of these sizes (a shorter list repeats its last value): few plans, fixed SQL
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_IN_NAMES = tuple(f"v{i}" for i in range(_SIZES[-1]))  # in_binds' names, made once


def in_binds(n: int) -> list[BindParameter[Any]]:
    """Bind parameters v0 ... v<n-1> for an IN list of `rows_in`."""
    return [bindparam(f"v{i}") for i in range(n)]


def rows_in(
    conn: Connection,
    stmt_for: Callable[[int], Any],
    values: Sequence[Any],
    params: Mapping[str, Any] | None = None,
) -> list[tuple[Any, ...]]:
    """`rows` of `stmt_for(n)` (an IN list of `in_binds(n)`) for all `values`, in lists of
    at most 512 (under every database's parameter limit)."""
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(values), _SIZES[-1]):
        chunk = list(values[start : start + _SIZES[-1]])
        n = next(size for size in _SIZES if size >= len(chunk))
        chunk += chunk[-1:] * (n - len(chunk))
        named = dict(zip(_IN_NAMES, chunk, strict=False))  # the first n names
        found += rows(conn, stmt_for(n), {**(params or {}), **named})
    return found


def rows(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of a SELECT or of an INSERT/UPDATE ... RETURNING, converted."""
    plan, cursor = _run(conn, stmt, params)
    try:
        raw = cursor.fetchall()
    finally:
        cursor.close()
    return converted(plan, raw)


def converted(plan: Plan, raw: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """The driver's rows of the plan's statement, each column through its type."""
    procs = plan.results
    if not any(procs):
        return [tuple(r) for r in raw]
    return [tuple(v if p is None else p(v) for p, v in zip(procs, r, strict=True)) for r in raw]


def named(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> list[Any]:
    """`rows` as named tuples: `row.status` as SQLAlchemy's rows have it."""
    found = rows(conn, stmt, params)
    make = _plans[(stmt, conn.dialect.name, tuple(params))].row
    return [make(*r) for r in found]


def scalars(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> list[Any]:
    """The first column of every row."""
    return [r[0] for r in rows(conn, stmt, params)]


def scalar(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> Any:
    """The first column of the first row, or None."""
    found = rows(conn, stmt, params)
    return found[0][0] if found else None


def run(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> int:
    """An INSERT/UPDATE/DELETE without RETURNING: the rows it changed."""
    _, cursor = _run(conn, stmt, params)
    try:
        return int(cursor.rowcount)
    finally:
        cursor.close()


def run_many(conn: Connection, stmt: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """An INSERT/UPDATE without RETURNING for every row, in order: one executemany for each
    run of rows with the same keys (a batch's deferred rows at its flush)."""
    send_waiting(conn)  # PostgreSQL: what waits goes first, as before any statement
    for keys, run in groupby(rows, key=tuple):
        plan = _plan_for(conn, stmt, keys)
        bound = [plan.convert(r) for r in run]
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(plan.sql, bound)
        except conn.dialect.loaded_dbapi.Error as e:
            raise driver_error(conn, e, plan.sql, bound) from e
        finally:
            cursor.close()
        StatementCount.n += 1
