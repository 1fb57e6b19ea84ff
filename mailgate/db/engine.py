"""Engine creation with durable settings, and schema migrations applied on start."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

from mailgate import json_text
from mailgate.config.database import DatabaseSettings

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x6D676D6967726174  # pg_advisory_xact_lock key ("mgmigrat")


def make_engine(url: str, settings: DatabaseSettings | None = None) -> Engine:
    """An engine whose commits are durable: SQLite in WAL mode with synchronous=FULL.

    Elsewhere a pool sized by [database] (docs/scaling.md), connections checked before
    use, and TCP keepalives so a vanished server is noticed within a minute.
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": 30},
            json_serializer=json_text.dumps,
            json_deserializer=json_text.loads,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # let SQLAlchemy, not pysqlite, decide when transactions begin (SAVEPOINT works)
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # temp_store stays FILE: MEMORY saved the drain's statement-journal writes but
            # held a big statement's temporary b-trees in RAM (314 MiB building a million
            # tickets; docs/performance.md, "SQLite's statement journals")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
            # take the write lock up front: no deadlock between two writers upgrading
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    s = settings or DatabaseSettings()
    connect_args: dict[str, object] = {}
    if u.get_backend_name() == "postgresql":
        connect_args = {
            # pg_stat_activity and pg_locks name the daemon a session belongs to
            "application_name": f"mailgate {s.node}" if s.node else "mailgate",
            "connect_timeout": s.connect_timeout_seconds,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=s.pool_size,
        max_overflow=s.max_overflow,
        pool_timeout=s.pool_timeout_seconds,
        pool_recycle=s.pool_recycle_seconds,
        connect_args=connect_args,
        json_serializer=json_text.dumps,
        json_deserializer=json_text.loads,
    )


@contextlib.contextmanager
def bounded_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction (`engine.begin()`) whose every statement is bounded by a batch,
    as the worker's are: on SQLite it keeps its temporary data in memory.

    An INSERT into a table with a trigger (articles and tickets: their full-text index)
    may fail after its trigger ran, so SQLite keeps a statement journal for it, a copy of
    every page the row changes; past 64 KiB in a transaction that journal goes to a
    temporary file (temp_store=FILE, every other connection's setting: a sweep or a report
    over a big database builds temporary b-trees too large for RAM). In a batch that was
    about 24 KB of page copies written to temporary files a message (docs/performance.md,
    "The batch's statement journals in memory"). SQLite reads temp_store when the
    transaction begins, so it is set before BEGIN and put back after the end.
    """
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            with conn.begin():
                yield conn
            return
        raw = conn.connection.dbapi_connection
        assert raw is not None
        before = raw.execute("PRAGMA temp_store").fetchone()[0]
        raw.execute("PRAGMA temp_store=MEMORY")  # no transaction here: the driver's are off
        try:
            with conn.begin():
                yield conn
        finally:
            try:
                raw.execute(f"PRAGMA temp_store={int(before)}")
            except sqlite3.Error:
                conn.invalidate()  # never back to the pool with temporary data in memory


def alembic_config(url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to every newest migration head (idempotent; safe on every start)."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # daemons starting together: one migrates, the others wait and find it done
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        if _applied(conn) == _heads():
            return  # the usual start: alembic (7 MiB of the daemon's memory) is not loaded
        from alembic import command

        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")


def _heads() -> set[str] | None:
    """The newest migration of each branch, read from the files' revision lines (None if
    a file writes them another way: then alembic decides)."""
    revisions, parents = set(), set()
    for f in (MIGRATIONS / "versions").glob("*.py"):
        source = f.read_text()
        rev = re.search(r'^revision = "([^"]+)"$', source, re.M)
        down = re.search(r"^down_revision = (.+)$", source, re.M)
        if rev is None or down is None:
            return None
        named = re.findall(r'"([^"]+)"', down[1])
        if not named and down[1] != "None":
            return None
        revisions.add(rev[1])
        parents.update(named)
    return revisions - parents


def _applied(conn: Connection) -> set[str]:
    """The migrations the database is at (alembic's own table; empty before the first)."""
    if not inspect(conn).has_table("alembic_version"):
        return set()
    return set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


class DatabaseReplaced(Exception):
    """The SQLite file was removed or replaced under the running daemon."""


class FileIdentity:
    """Device and inode of an engine's SQLite file, as it was at start (None: not a file)."""

    def __init__(self, engine: Engine):
        u = engine.url
        database = u.database if u.get_backend_name() == "sqlite" else None
        self.path = Path(database) if database and database != ":memory:" else None
        self.identity = self._stat()

    def _stat(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def check(self) -> None:
        """Raise DatabaseReplaced if the file is gone or is another file now."""
        if self.path is None or self.identity is None:
            return
        now = self._stat()
        if now != self.identity:
            what = "removed" if now is None else "replaced by another file"
            raise DatabaseReplaced(
                f"database file {self.path} was {what} while mailgate runs: not committing "
                "into it; new mail stays in the spool; restart mailgate to continue"
            )


def connect(url: str, settings: DatabaseSettings | None = None) -> Engine:
    engine = make_engine(url, settings)
    upgrade(engine)
    return engine
