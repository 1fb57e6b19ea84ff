"""A UtcDateTime column stores the same thing with its one-step bind on SQLite.

On SQLite `UtcDateTime` makes DATETIME's text itself (db/models.py); the text in the
database must be byte for byte what process_bind_param followed by SQLite DATETIME's own
processor made, through SQLAlchemy and through store/fast.py, for any zone, no
microseconds, the first and last years. PostgreSQL keeps the chain (psycopg binds the
naive UTC datetime). A naive datetime is refused on both.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite.base import DATETIME
from sqlalchemy.exc import StatementError

from mailgate.db import engine as db
from mailgate.db.models import AuditEvent, UtcDateTime
from mailgate.store import fast

audit = AuditEvent.__table__
SQLITE = sqlite.dialect()
_INSERT = insert(audit)
WHEN = [
    datetime(2026, 12, 2, 4, 30, 0, 123456, tzinfo=UTC),
    datetime(2026, 12, 2, 4, 30, 0, tzinfo=UTC),  # no microseconds: still ".000000"
    datetime(2026, 12, 2, 0, 15, 0, 7, tzinfo=timezone(timedelta(hours=5, minutes=45))),
    datetime(2026, 3, 29, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-11))),
    datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


def _chain_text(value: datetime) -> str:
    """What SQLite stored before: process_bind_param, then DATETIME's processor."""
    naive = UtcDateTime().process_bind_param(value, SQLITE)
    return str(DATETIME().bind_processor(SQLITE)(naive))


def _rows(start: int) -> list[dict]:  # type: ignore[type-arg]
    return [
        {"id": start + i, "ticket_id": None, "at": at, "actor": "t", "action": "a", "detail": {}}
        for i, at in enumerate(WHEN)
    ]


@pytest.fixture
def sqlite_path(tmp_path):  # type: ignore[no-untyped-def]
    return tmp_path / "utc.db"


def test_sqlite_stores_the_text_the_chain_made(sqlite_path):
    engine = db.connect(f"sqlite:///{sqlite_path}")
    with engine.begin() as conn:
        conn.execute(_INSERT, _rows(1))  # through SQLAlchemy
        fast.run_many(conn, _INSERT, _rows(101))  # on the cursor
        read = conn.execute(select(audit.c.id, audit.c.at).order_by(audit.c.id)).all()
    engine.dispose()
    raw = sqlite3.connect(sqlite_path).execute("SELECT id, at FROM audit_events ORDER BY id")
    expected = [_chain_text(at) for at in WHEN]
    assert [at for _, at in raw.fetchall()] == expected * 2
    assert [at for _, at in read] == WHEN * 2
    assert all(at.tzinfo is UTC for _, at in read)


def test_postgresql_binds_the_naive_utc_datetime(pg_url):
    engine: Engine = db.connect(pg_url)
    process = UtcDateTime().dialect_impl(engine.dialect).bind_processor(engine.dialect)
    assert process is not None
    assert [process(at) for at in WHEN] == [at.astimezone(UTC).replace(tzinfo=None) for at in WHEN]
    with engine.begin() as conn:
        conn.execute(_INSERT, _rows(1))
        fast.run_many(conn, _INSERT, _rows(101))
        read = conn.execute(select(audit.c.at).order_by(audit.c.id)).scalars().all()
    engine.dispose()
    assert read == WHEN * 2


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_naive_datetime_is_refused(backend, request, sqlite_path):
    url = f"sqlite:///{sqlite_path}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    engine = db.connect(url)
    naive = [{**_rows(1)[0], "at": datetime(2026, 12, 2, 4, 30)}]
    with engine.begin() as conn:
        with pytest.raises(StatementError, match="naive"):
            conn.execute(_INSERT, naive)
        with pytest.raises(ValueError, match="naive"):
            fast.run_many(conn, _INSERT, naive)
    engine.dispose()
