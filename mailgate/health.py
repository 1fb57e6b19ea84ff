"""What each running part of the daemon last reported: ok or failing, and since when.

The worker, the sender, each IMAP poller and the database connection report here; the
`/healthz` endpoint, the Prometheus metrics and `mailgate stats` read a snapshot. One
instance per daemon, owned by `app.py`; thread-safe, since pollers and the sender's pool
report from their own threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mailgate.runtime import utcnow


@dataclass(frozen=True)
class ComponentState:
    """One part's last report. `since` is when `ok` last changed."""

    name: str
    ok: bool
    since: datetime
    last_success: datetime | None
    detail: str


class Health:
    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, ComponentState] = {}

    def succeeded(self, name: str, detail: str = "") -> None:
        """`name` did its work just now (a poll, a batch, a send, a query)."""
        self._report(name, ok=True, detail=detail)

    def failed(self, name: str, reason: str) -> None:
        """`name` cannot do its work; `reason` says why, for an admin to read."""
        self._report(name, ok=False, detail=reason)

    def forget(self, name: str) -> None:
        """`name` stopped on purpose (a mailbox removed from the config)."""
        with self._lock:
            self._states.pop(name, None)

    def snapshot(self) -> tuple[ComponentState, ...]:
        with self._lock:
            return tuple(sorted(self._states.values(), key=lambda s: s.name))

    def healthy(self) -> bool:
        return all(s.ok for s in self.snapshot())

    def _report(self, name: str, *, ok: bool, detail: str) -> None:
        now = self._clock()
        with self._lock:
            old = self._states.get(name)
            since = old.since if old is not None and old.ok == ok else now
            last_success = now if ok else (old.last_success if old is not None else None)
            self._states[name] = ComponentState(name, ok, since, last_success, detail)
