"""The spool's durable writes: a file's data, a directory's entries, and the group commit
of a directory that concurrent writers share (spool.py is its only user)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, *parts: bytes | memoryview) -> None:
    """A new file holding `parts` one after the other (one writev: no joined copy), on disk."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        views = [memoryview(p).cast("B") for p in parts if len(p)]
        while views:
            n = os.writev(fd, views)
            while views and n >= len(views[0]):  # a short write: go on after what it took
                n -= len(views[0])
                views.pop(0)
            if views:
                views[0] = views[0][n:]
        os.fdatasync(fd)  # a new file: its data and size, what reading it back needs
    finally:
        os.close(fd)


class GroupFsync:
    """Group commit of a directory: one fsync covers every rename made before it began.

    Concurrent writers (SMTP sessions, pollers) each wait until a directory fsync that
    started after their rename has finished; whoever finds none running does one for all
    waiting. A failed fsync covers nobody: each waiter then tries again itself.
    """

    def __init__(self, path: Path, fsync: Callable[[Path], None] = fsync_dir):
        self.path, self._fsync = path, fsync
        self._cond = threading.Condition()
        self._asked = self._synced = 0  # renames registered / covered by a finished fsync
        self._busy = False
        self.fsyncs = 0

    def sync(self) -> None:
        """Return once this caller's earlier rename in `path` is durable."""
        with self._cond:
            self._asked += 1
            mine = self._asked
            while self._synced < mine:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy, upto = True, self._asked
                self._cond.release()
                try:
                    self._fsync(self.path)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
                self._synced, self.fsyncs = upto, self.fsyncs + 1
