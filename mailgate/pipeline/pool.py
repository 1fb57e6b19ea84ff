"""Parsing ahead of the database on the other cores: a spawn-safe process pool, in order.

The worker hands a batch's raw messages to `PreparePool.submit` and later collects
their `Prepared` values in spool order with `Ahead.results`, so the next batch is parsed
while the current one is in the database. A pool process that dies (killed, out of
memory, a crash in a C library) breaks the pool: the batch is then prepared again one
message at a time in a fresh pool, and the message a process died on gets a `rejected`
reason, so it is shunted with that reason instead of being lost or taking the worker
down with it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import weakref
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from mailgate.pipeline.prepare import Prepared, prepare

log = logging.getLogger(__name__)

PrepareFn = Callable[[bytes], Prepared]
MIN_FOR_POOL = 8  # smaller batches are parsed in-process: a round trip costs more
DIED = "the parse process died on this message"


def pool_size(setting: int | None) -> int:
    """Processes for parsing ahead: the setting, or one per core; 0 or 1 parses in-process."""
    return (os.cpu_count() or 1) if setting is None else setting


class Ahead:
    """One batch being prepared: its results in the order the messages were given."""

    def __init__(self, pool: PreparePool, raws: list[bytes], futures: list[Future[Prepared]]):
        self._pool, self._raws, self._futures = pool, raws, futures

    def results(self) -> list[Prepared]:
        if not self._futures:
            return [self._pool.fn(raw) for raw in self._raws]
        try:
            return [f.result() for f in self._futures]
        except (BrokenProcessPool, CancelledError):
            log.warning("worker: a parse process died; preparing the batch one by one")
            self._pool.close()
            return [self._pool.one(raw) for raw in self._raws]


class PreparePool:
    def __init__(self, processes: int, fn: PrepareFn = prepare):
        self.processes = processes
        self.fn = fn  # a module-level function: spawned processes import it by name
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn: no fork of a process holding database connections and threads
            ctx = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(self.processes, mp_context=ctx)
            # a pipeline dropped without close() (tests, one-shot commands) ends its pool
            weakref.finalize(self, self._executor.shutdown, wait=False, cancel_futures=True)
        return self._executor

    def submit(self, raws: list[bytes]) -> Ahead:
        """Start preparing `raws` (in this process when the pool would not pay)."""
        if self.processes <= 1 or len(raws) < MIN_FOR_POOL:
            return Ahead(self, raws, [])
        try:
            pool = self._pool()
            return Ahead(self, raws, [pool.submit(self.fn, raw) for raw in raws])
        except BrokenProcessPool:  # broken since the last batch: results() redoes it
            return Ahead(self, raws, [_broken()])

    def one(self, raw: bytes) -> Prepared:
        """Prepare one message alone; if its process dies, the message is rejected."""
        try:
            return self._pool().submit(self.fn, raw).result()
        except BrokenProcessPool:
            self._reset()
            return Prepared(rejected=DIED)

    def _reset(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor = None

    def close(self) -> None:
        self._reset()


def _broken() -> Future[Prepared]:
    f: Future[Prepared] = Future()
    f.set_exception(BrokenProcessPool("the parse pool broke"))
    return f
