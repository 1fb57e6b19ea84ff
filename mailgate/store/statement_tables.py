"""Which tables a statement touches, for a batch that holds rows back (store/batch.py).

A write also names the tables its foreign keys point at: on SQLite (PRAGMA foreign_keys=ON)
and PostgreSQL a child row is checked against its parent when it is written, so a parent
the batch still holds back must be written first.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, TextClause
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.util import find_tables

_seen: dict[Any, frozenset[str]] = {}
_MAX = 2000  # statements built per call would grow it: bounded


def tables_of(stmt: Any) -> frozenset[str] | None:
    """The tables `stmt` reads or writes (and a write's foreign keys' tables); None for
    SQL text, which may touch any."""
    if isinstance(stmt, str | TextClause) or not hasattr(stmt, "_from_objects"):
        return None
    found = _seen.get(stmt)
    if found is None:
        tables = find_tables(stmt, include_aliases=True, include_joins=True, include_crud=True)
        names = {t.name for t in tables if isinstance(t, Table)}
        target = getattr(stmt, "table", None) if isinstance(stmt, UpdateBase) else None
        if isinstance(target, Table):
            names.update(fk.column.table.name for fk in target.foreign_keys)
        if len(_seen) >= _MAX:
            _seen.clear()
        found = _seen[stmt] = frozenset(names)
    return found
