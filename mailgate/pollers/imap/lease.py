"""Whether this daemon may poll a mailbox: a lease in the database (store/leases.py).

Several daemons on one database each run a poller per mailbox, but only the lease's
holder connects; the others look again every fifth of the takeover time. The holder
renews every third of its lease while it polls (between IDLE checks, before each
checkpoint write) and gives the lease back on a clean stop. A holder that dies stops
renewing: the lease (four fifths of the takeover time) runs out and the next look takes
it, so a dead daemon's mailbox is polled again within `mailbox_takeover_seconds`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from mailgate.db.watch import error_line
from mailgate.runtime import Clock, utcnow
from mailgate.store import leases

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another daemon holds the mailbox now, or the database cannot say: stop polling."""


class MailboxLease:
    def __init__(
        self,
        engine: Engine,
        key: str,
        holder: str,
        takeover_seconds: float,
        *,
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.engine = engine
        self.name = f"imap:{key}"
        self.holder = holder
        self.seconds = takeover_seconds * 0.8
        self.retry_seconds = takeover_seconds * 0.2
        self.renew_seconds = self.seconds / 3
        self.clock = clock
        self.monotonic = monotonic
        self._renewed: float | None = None  # monotonic time of the last renewal, None: not held

    @property
    def held(self) -> bool:
        return self._renewed is not None

    def acquire(self) -> bool:
        """Take the lease if it is free, ours or ran out (database errors: not taken)."""
        try:
            got = leases.take(self.engine, self.name, self.holder, self.clock(), self.seconds)
        except SQLAlchemyError as e:
            log.warning("%s: cannot take the lease: %s", self.name, error_line(e))
            got = False
        self._renewed = self.monotonic() if got else None
        return got

    def keep(self) -> None:
        """Renew when a third of the lease has passed (take it when not held yet);
        LeaseLost if it is not ours now."""
        if self._renewed is None:
            if not self.acquire():
                raise LeaseLost(f"{self.name}: another daemon holds the lease")
            return
        if self.monotonic() - self._renewed < self.renew_seconds:
            return
        try:
            got = leases.take(self.engine, self.name, self.holder, self.clock(), self.seconds)
        except SQLAlchemyError as e:
            self._renewed = None
            raise LeaseLost(f"{self.name}: cannot renew the lease: {error_line(e)}") from e
        if not got:
            self._renewed = None
            raise LeaseLost(f"{self.name}: another daemon took the lease")
        self._renewed = self.monotonic()

    def release(self) -> None:
        if self._renewed is None:
            return
        self._renewed = None
        with contextlib.suppress(SQLAlchemyError):  # it runs out by itself anyway
            leases.release(self.engine, self.name, self.holder)
