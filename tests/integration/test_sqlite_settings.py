"""The settings every SQLite connection of the daemon runs with (db/engine.py)."""

from __future__ import annotations

from pathlib import Path

from mailgate.db.engine import make_engine


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
