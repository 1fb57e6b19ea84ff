"""Which daemon runs the sweeps: one at a time on one database, another when it dies.

PostgreSQL: a session advisory lock held on a connection of its own, taken with
`pg_try_advisory_lock` at a tick and kept across ticks; the server drops it when that
session ends (a killed daemon's socket closes; a vanished machine's is noticed by the TCP
keepalives), and the next tick of another daemon takes it. Each tick checks that the
connection still lives first, so a holder whose session was cut does not sweep on.
SQLite (one daemon per database file anyway): a row in the leases table that the
sweeper renews at each tick and that runs out after three intervals.
"""

from __future__ import annotations

import contextlib
import logging

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from mailgate.runtime import Clock, utcnow
from mailgate.store import leases

log = logging.getLogger(__name__)

# pg_try_advisory_lock's key: any bigint no other user of the database picks ("mgsweep")
ADVISORY_KEY = 0x6D6773776565700
LEASE_NAME = "scheduler"


class SweepLock:
    def __init__(
        self, engine: Engine, holder: str, *, lease_seconds: float = 180.0, clock: Clock = utcnow
    ):
        self.engine = engine
        self.holder = holder
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.advisory = engine.dialect.name == "postgresql"
        self._conn: Connection | None = None  # the session holding the advisory lock
        self.held = False

    def acquire(self) -> bool:
        """True if this daemon runs the sweeps now (taken, or still held)."""
        was = self.held
        try:
            self.held = self._advisory() if self.advisory else self._lease()
        except SQLAlchemyError as e:
            self._drop()
            if was:
                log.warning("scheduler: lost the sweep lock: %s", str(e).splitlines()[0])
        if self.held and not was:
            log.info("scheduler: this daemon runs the sweeps now (%s)", self.holder)
        return self.held

    def release(self) -> None:
        if self.advisory:
            if self._conn is not None and self.held:
                with contextlib.suppress(SQLAlchemyError):
                    self._conn.execute(text("SELECT pg_advisory_unlock_all()"))
            self._drop()
        elif self.held:
            with contextlib.suppress(SQLAlchemyError):
                leases.release(self.engine, LEASE_NAME, self.holder)
        self.held = False

    def _advisory(self) -> bool:
        if self._conn is not None and self.held:
            self._conn.execute(text("SELECT 1"))  # raises if our session is gone
            return True
        if self._conn is None:
            # autocommit: a session that waits between ticks must not sit in a transaction
            self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        got = self._conn.execute(
            text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}
        ).scalar_one()
        return bool(got)

    def _lease(self) -> bool:
        return leases.take(self.engine, LEASE_NAME, self.holder, self.clock(), self.lease_seconds)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self.held = False
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                conn.invalidate()  # never hand a session that may hold the lock back to the pool
            with contextlib.suppress(SQLAlchemyError):
                conn.close()
