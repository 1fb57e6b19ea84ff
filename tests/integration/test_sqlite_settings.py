"""The settings every SQLite connection of the daemon runs with (db/engine.py)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from mailgate.db.engine import bounded_transaction, make_engine
from mailgate.spool import Envelope

SMTP = Envelope(source="smtp", rcpt_tos=("support@example.test",))


def _pragma(dbapi_conn, name: str):  # type: ignore[no-untyped-def]
    return dbapi_conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_every_connection_is_durable_and_keeps_big_temporary_data_on_disk(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'mailgate.db'}")
    try:
        a, b = engine.raw_connection(), engine.raw_connection()  # two of the pool's
        try:
            for conn in (a, b):
                assert _pragma(conn, "journal_mode") == "wal"
                assert _pragma(conn, "synchronous") == 2  # FULL: a commit is on disk
                assert _pragma(conn, "foreign_keys") == 1
                # not MEMORY: a big statement's temporary b-trees would be held in RAM
                assert _pragma(conn, "temp_store") in (0, 1)
        finally:
            a.close()
            b.close()
    finally:
        engine.dispose()


def test_a_failing_multi_row_statement_still_rolls_back_alone(tmp_path: Path) -> None:
    """What the statement journal is for: a statement that fails on its third row undoes
    its first two and leaves the transaction's earlier work (BEGIN IMMEDIATE, the
    driver's own transactions off: db/engine.py)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'mailgate.db'}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t (v) VALUES ('kept')")
            try:
                conn.exec_driver_sql(
                    "INSERT INTO t (v) SELECT column1 FROM (VALUES ('a'), ('b'), ('kept'))"
                )
            except Exception as e:  # noqa: BLE001 - the unique key, on the third row
                assert "UNIQUE" in str(e)
            else:
                raise AssertionError("the duplicate row was inserted")
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT v FROM t ORDER BY id").scalars().all()
        assert rows == ["kept"]
    finally:
        engine.dispose()


def test_a_bounded_transaction_keeps_temporary_data_in_memory_and_puts_it_back(
    tmp_path: Path,
) -> None:
    """The worker's batch (db/engine.py `bounded_transaction`): temp_store MEMORY from
    before its BEGIN to its end, then the connection's own setting again, after a commit
    and after a rollback; the pool's other connections never see it."""
    engine = make_engine(f"sqlite:///{tmp_path / 'mailgate.db'}", None)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        with bounded_transaction(engine) as conn:
            raw = conn.connection.dbapi_connection
            assert _pragma(raw, "temp_store") == 2  # MEMORY
            assert raw.in_transaction  # begun after the setting, as SQLite reads it
            other = engine.raw_connection()
            try:
                assert _pragma(other, "temp_store") in (0, 1)
            finally:
                other.close()
            conn.exec_driver_sql("INSERT INTO t (id) VALUES (1)")
        assert _pragma(raw, "temp_store") in (0, 1)
        try:
            with bounded_transaction(engine) as conn:
                raw = conn.connection.dbapi_connection
                conn.exec_driver_sql("INSERT INTO t (id) VALUES (2)")
                raise RuntimeError("a failing batch")
        except RuntimeError:
            pass
        assert _pragma(raw, "temp_store") in (0, 1)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT id FROM t").scalars().all() == [1]
    finally:
        engine.dispose()


def test_the_worker_stores_each_batch_in_a_bounded_transaction(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every batch the worker commits ran with its temporary data in memory."""
    from mailgate.pipeline import worker as worker_mod
    from tests.harness import load, message, offline, tickets, write_config

    seen: list[int] = []

    @contextlib.contextmanager
    def recorded(engine):  # type: ignore[no-untyped-def]
        with bounded_transaction(engine) as conn:
            seen.append(_pragma(conn.connection.dbapi_connection, "temp_store"))
            yield conn

    monkeypatch.setattr(worker_mod, "bounded_transaction", recorded)
    engine, spool, worker = offline(load(write_config(tmp_path)))
    for i in range(3):
        spool.put(message(message_id=f"<b{i}@example.com>", subject=f"Disk {i}"), SMTP)
    worker.drain()
    assert len(tickets(engine)) == 3
    assert seen and set(seen) == {2}
