"""Parsing ahead of the database on the other cores: a spawn-safe process pool, in order.

The worker hands the names of a batch's claimed messages to `PreparePool.submit` and
later collects them read and prepared, in spool order, with `Ahead.results`, so the next
batch is read and parsed while the current one is in the database. A batch goes out as
one task per process (the spool's incoming/ and a contiguous chunk of names in; each
message's envelope, raw bytes and `Prepared` out): a round trip per message cost more
than the parsing it moved (docs/performance.md, "The parse pool and memory"), and reading
the files where they are parsed takes it off the worker's thread ("The spool's files read
where they are parsed"). A message not there to process (`read_waiting`) is left out.
The daemon starts the processes with the worker (`started`), so their imports are not
paid inside its first batch.

A pool process that dies (killed, out of memory, a crash in a C library) breaks the pool:
the batch is then read in the worker and prepared again one message at a time in a fresh
pool, and the message a process died on gets a `rejected` reason, so it is shunted with
that reason instead of being lost or taking the worker down with it.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from mailgate.pipeline.prepare import NO_SETTINGS, Prepared, Settings, prepare
from mailgate.spool import Spooled, read_waiting

log = logging.getLogger(__name__)

PrepareFn = Callable[[bytes, Settings], Prepared]
MIN_FOR_POOL = 8  # smaller batches are parsed in-process: a round trip costs more
DIED = "the parse process died on this message"
T = TypeVar("T")
# a message of the batch as the worker gets it back: None where its file could not be read
Taken = tuple[Spooled, Prepared | None]


def pool_size(setting: int | None) -> int:
    """Processes for parsing ahead: the setting, or one per core but the worker's own (one
    process parses a batch faster than the worker stores one); 0 parses in-process."""
    return (os.cpu_count() or 1) - 1 if setting is None else setting


def prepare_chunk(
    fn: PrepareFn, incoming: str, names: list[str], settings: Settings
) -> list[Taken]:
    """One task of a pool process: a chunk of a batch (module-level: picklable)."""
    return _read_and_prepare(incoming, names, lambda raw: fn(raw, settings))


def _read_and_prepare(
    incoming: str, names: list[str], prepare_one: Callable[[bytes], Prepared]
) -> list[Taken]:
    """The messages read and prepared, in order, without those not there to process."""
    out: list[Taken] = []
    for name in names:
        spooled = read_waiting(incoming, name)
        if spooled is not None:
            raw = spooled.raw
            out.append((spooled, prepare_one(raw) if isinstance(raw, bytes) else None))
    return out


def _end_with_parent() -> None:
    """Start of a pool process: it exits when the worker's process is gone (after a
    SIGKILL no one would end it, and it would wait for work forever)."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_after, args=(parent.sentinel,), daemon=True).start()


def _exit_after(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


def _ready() -> int:
    """A no-op task that makes a process start and import the parser before the first batch."""
    return os.getpid()


def chunks(items: list[T], n: int) -> list[list[T]]:
    """`items` cut into at most `n` contiguous chunks of nearly equal size, in order."""
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(min(n, len(items))):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


class Ahead:
    """One batch being read and prepared: its results in the order of its names."""

    def __init__(
        self,
        pool: PreparePool,
        incoming: str,
        names: list[str],
        settings: Settings,
        futures: list[Future[list[Taken]]],
    ):
        self._pool, self._incoming, self._settings = pool, incoming, settings
        self.names, self._futures = names, futures

    def results(self) -> list[Taken]:
        if not self._futures:
            return prepare_chunk(self._pool.fn, self._incoming, self.names, self._settings)
        try:
            return [taken for f in self._futures for taken in f.result()]
        except (BrokenProcessPool, CancelledError):
            log.warning("worker: a parse process died; preparing the batch one by one")
            self._pool.close()
            return self._one_by_one()

    def _one_by_one(self) -> list[Taken]:
        """The batch read here (reading is not what kills a process), each message then
        prepared alone, so the one a process dies on is rejected."""
        one = self._pool.one
        return _read_and_prepare(self._incoming, self.names, lambda raw: one(raw, self._settings))


class PreparePool:
    def __init__(self, processes: int, fn: PrepareFn = prepare):
        self.processes = processes
        self.fn = fn  # a module-level function: spawned processes import it by name
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn: no fork of a process holding database connections and threads
            ctx = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(
                self.processes, mp_context=ctx, initializer=_end_with_parent
            )
            # a pipeline dropped without close() (tests, one-shot commands) ends its pool
            weakref.finalize(self, self._executor.shutdown, wait=False, cancel_futures=True)
        return self._executor

    def start(self) -> list[Future[int]]:
        """Start every process now; each future is done once its process is ready."""
        if self.processes < 1:
            return []
        pool = self._pool()
        # one task each, all at once: the executor spawns a process for each
        return [pool.submit(_ready) for _ in range(self.processes)]

    def submit(self, incoming: str, names: list[str], settings: Settings = NO_SETTINGS) -> Ahead:
        """Start reading and preparing the messages `names` of the spool's `incoming`
        directory (in this process, when `results` is called, if the pool would not pay)."""
        if self.processes < 1 or len(names) < MIN_FOR_POOL:
            return Ahead(self, incoming, names, settings, [])
        try:
            pool = self._pool()
            tasks = [
                pool.submit(prepare_chunk, self.fn, incoming, c, settings)
                for c in chunks(names, self.processes)
            ]
            return Ahead(self, incoming, names, settings, tasks)
        except BrokenProcessPool:  # broken since the last batch: results() redoes it
            return Ahead(self, incoming, names, settings, [_broken()])

    def one(self, raw: bytes, settings: Settings = NO_SETTINGS) -> Prepared:
        """Prepare one message alone; if its process dies, the message is rejected."""
        try:
            return self._pool().submit(self.fn, raw, settings).result()
        except BrokenProcessPool:
            self._reset()
            return Prepared(rejected=DIED)

    def _reset(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor = None

    def close(self) -> None:
        self._reset()


def started(setting: int | None, running: PreparePool | None = None) -> PreparePool:
    """The worker's pool with its processes starting now; after a config reload the
    running pool is kept when its size did not change (no restart of the processes)."""
    size = pool_size(setting)
    if running is not None and running.processes == size:
        return running
    pool = PreparePool(size)  # a replaced pool ends when it is dropped (its finalizer)
    pool.start()
    return pool


def _broken() -> Future[list[Taken]]:
    f: Future[list[Taken]] = Future()
    f.set_exception(BrokenProcessPool("the parse pool broke"))
    return f
