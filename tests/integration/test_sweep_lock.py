"""The sweep lock (scheduler/lock.py): one daemon sweeps at a time, another takes over when
its session ends; an advisory lock on a real PostgreSQL, a lease row on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from mailgate.db import engine as db
from mailgate.scheduler.lock import SweepLock

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_advisory_lock_one_sweeper_and_takeover_when_its_session_dies(pg_url: str) -> None:
    ea, eb = db.connect(pg_url), db.make_engine(pg_url)  # two daemons: two pools
    a, b = SweepLock(ea, "node-a"), SweepLock(eb, "node-b")
    try:
        assert a.advisory and b.advisory
        assert a.acquire() and not b.acquire()
        assert a.acquire() and not b.acquire()  # held across ticks
        assert a._conn is not None
        pid = a._conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:  # node-a's machine vanishes: its session ends
            # with a timeout the call returns once the backend is gone (and its locks with
            # it); without one it only signals, and b could ask before the lock is free
            ended = conn.execute(text("SELECT pg_terminate_backend(:p, 10000)"), {"p": pid})
            assert ended.scalar_one()
        admin.dispose()
        assert b.acquire()
        assert not a.acquire()  # node-a notices its session is gone; node-b holds it now
        assert not a.acquire()
        b.release()  # a clean stop
        assert a.acquire() and not b.acquire()
        a.release()
    finally:
        ea.dispose()
        eb.dispose()


def test_lease_on_sqlite_runs_out_when_the_sweeper_stops_renewing(tmp_path: Path) -> None:
    engine = db.connect("sqlite:///" + str(tmp_path / "db.sqlite"))
    now = [T0]
    a = SweepLock(engine, "node-a", lease_seconds=180, clock=lambda: now[0])
    b = SweepLock(engine, "node-b", lease_seconds=180, clock=lambda: now[0])
    assert not a.advisory
    assert a.acquire() and not b.acquire()
    now[0] += timedelta(seconds=60)
    assert a.acquire() and not b.acquire()  # renewed to T0 + 240 s
    now[0] += timedelta(seconds=181)
    assert b.acquire() and not a.acquire()  # node-a stopped ticking for three intervals
    b.release()
    assert a.acquire()
    engine.dispose()
