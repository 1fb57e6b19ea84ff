"""Messages the worker stored since the daemon started, per queue and source (thread-safe)."""

from __future__ import annotations

import threading
from collections import Counter


def source_kind(source: str) -> str:
    """An envelope's source as a label: "smtp", "lmtp", "pipe", "imap" (without the mailbox)."""
    return source.split(":", 1)[0] or "unknown"


class IntakeCounts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, queues: tuple[str, ...] | list[str], source: str) -> None:
        """One stored message: +1 for each queue it went to."""
        kind = source_kind(source)
        with self._lock:
            for q in queues or ("",):
                self._counts[(q, kind)] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        """(queue, source) -> messages."""
        with self._lock:
            return dict(self._counts)
