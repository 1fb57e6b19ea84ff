"""The worker: claim spooled messages, run the pipeline, commit, then remove the files.

A batch of messages shares one database transaction (one durable commit). The batch runs
optimistically without savepoints; when a message fails, the batch is rolled back and
redone with a SAVEPOINT per message, so the failing one rolls back alone and is retried
or shunted with the step and reason. Spool files are removed only after the commit.

Several daemons on one database: the same message arriving at two of them meets the
unique dedupe key (or another unique key) of the one that committed first; the redo tries
that message once more in a fresh savepoint, which then sees the committed row and
stores a duplicate. A lost database gives the batch back to the spool and is retried
with backoff; `health` (mailgate/health.py) hears "database" failing and ok again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from mailgate.config.model import Config
from mailgate.db.engine import DatabaseReplaced, FileIdentity, bounded_transaction
from mailgate.db.watch import COMPONENT, error_line
from mailgate.health import Health
from mailgate.observe.intake import IntakeCounts
from mailgate.pipeline.outcome import Outcome, Rejected, StepFailed
from mailgate.pipeline.pool import Ahead
from mailgate.pipeline.prepare import Prepared
from mailgate.runtime import Backoff, wait_for_wake
from mailgate.spool import Spool, SpoolEntry, report
from mailgate.store.batch import BatchState, batch_state, flush

log = logging.getLogger(__name__)


# deadlock_detected, serialization_failure: another daemon's transaction won; go again
CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})
CONFLICT_TRIES = 5


class _NeedsIsolation(Exception):
    """A message failed in an optimistic batch: redo the batch with savepoints."""


class MessageProcessor(Protocol):
    """The per-message pipeline (pipeline/steps.py) as the worker sees it."""

    def prepare(self, incoming: str, names: list[str]) -> Ahead: ...

    def close(self) -> None: ...

    def read_ahead(self, conn: Connection, batch: BatchState, prepared: list[Prepared]) -> None: ...

    def process(
        self, conn: Connection, entry: SpoolEntry, raw: bytes, prepared: Prepared | None
    ) -> Outcome: ...


@dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    retried: int = 0
    shunted: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.stored + self.duplicates + self.retried + self.shunted


@dataclass(frozen=True)
class _Failure:
    entry: SpoolEntry
    step: str
    reason: str
    traceback: str = ""
    final: bool = False  # retrying cannot help: shunt at once


def _failure(entry: SpoolEntry, step: str, e: Exception) -> _Failure:
    if isinstance(e, Rejected):
        return _Failure(entry, e.step, e.reason, final=True)
    if isinstance(e, StepFailed):
        return _Failure(entry, e.step, e.summary, e.traceback)
    return _Failure(entry, step, f"{type(e).__name__}: {e}", traceback.format_exc(limit=8))


# each message's entry, bytes (or why they could not be read: step "read") and Prepared
_Batch = tuple[list[SpoolEntry], list[bytes | Exception], list[Prepared | None]]


def _ready(prepared: list[Prepared | None]) -> list[Prepared]:
    return [p for p in prepared if p is not None]


class Worker:
    def __init__(self, config: Config, engine: Engine, spool: Spool, pipeline: MessageProcessor):
        self.config = config
        self.engine = engine
        self.spool = spool
        self.pipeline = pipeline
        self.db_file = FileIdentity(engine)
        self.halted = ""  # why the worker stopped committing (the database file was replaced)
        self.health: Health | None = None  # set by app.py: "worker" reports each batch
        self.intake = IntakeCounts()  # stored messages per queue and source (/metrics)
        self._ahead: Ahead | None = None  # the next batch, claimed and being read and parsed

    def process_batch(self, limit: int | None = None) -> BatchResult:
        """Claim up to `limit` messages and process them in one transaction.

        The next batch is claimed and handed to the parse processes before this one goes
        into the database, so reading and parsing run on the other cores meanwhile, in order.
        """
        self.db_file.check()  # commits into a deleted file would lose acknowledged mail
        limit = limit or self.config.worker.batch_size
        result = BatchResult()
        try:
            # parsed once, ahead of the database; the redo below reuses it
            batch = self._next_batch(limit)
        except Exception:
            log.exception("worker: a batch not read; its messages stay in the spool")
            raise
        if batch is None:
            return result
        entries, raws, prepared = batch
        try:
            try:
                done = self._optimistic(entries, raws, prepared)
            except _NeedsIsolation:
                done = None
            if done is None:  # outside the except: the redo's tracebacks carry no context
                # something failed: redo the batch with each message in its own savepoint
                done = self._transaction(entries, raws, prepared, isolate=True)
        except Exception:
            # nothing to give back: a claimed message never leaves incoming/ before done()
            log.exception(
                "worker: batch of %d not committed; messages stay in the spool", len(entries)
            )
            raise
        committed, failed, outcomes = done
        self.spool.done(committed)
        now = time.time()
        for entry, o in outcomes:
            if o.action == "duplicate":
                result.duplicates += 1
            else:
                result.stored += 1
                self.intake.add(o.queues, entry.envelope.source)
            result.latencies.append(now - entry.envelope.received_at)
            log.info(
                "message %s: queue=%s ticket=#%d %s article=%s ack=%s",
                entry.name,
                ",".join(o.queues),
                o.ticket_id,
                o.action,
                o.article_id,
                "queued" if o.ack else "no",
            )
        for f in failed:
            if self._record_failure(f):
                result.shunted += 1
            else:
                result.retried += 1
        return result

    def _record_failure(self, f: _Failure) -> bool:
        """Write the failure into the message's envelope; True if it was shunted."""
        first_line = f.reason.splitlines()[0] if f.reason else ""
        if f.final:
            self.spool.shunt_now(f.entry, f.step, f.reason)
            shunted = True
        else:
            shunted = self.spool.fail(
                f.entry, f.step, f.reason, self.config.worker.max_attempts, f.traceback
            )
        if shunted:
            log.warning("message %s: shunted at %s: %s", f.entry.name, f.step, first_line)
        else:
            log.warning(
                "message %s: failed at %s (will retry): %s", f.entry.name, f.step, first_line
            )
        return shunted

    def _next_batch(self, limit: int) -> _Batch | None:
        """The batch to process now (None: none waiting), the next one read and parsed meanwhile."""
        claimed, self._ahead = self._ahead, None
        if claimed is None:
            claimed = self._claim(limit, busy=())
        passed: set[str] = set()  # not there yet (a put() finishing): not claimed again now
        while claimed is not None:
            self._ahead = self._claim(limit, busy={*claimed.names, *passed})
            batch = self._prepared(claimed)
            if batch[0]:
                return batch
            passed.update(claimed.names)
            claimed, self._ahead = self._ahead, None
        return None

    def _claim(self, limit: int, busy: Collection[str]) -> Ahead | None:
        """Claim a batch by name (never one of `busy`, in flight); start reading and parsing it."""
        names = self.spool.claim_names(limit, busy=busy)
        return self.pipeline.prepare(self.spool.incoming, names) if names else None

    @staticmethod
    def _prepared(ahead: Ahead) -> _Batch:
        """The claimed batch as read and parsed, without the messages not there to process;
        what reading it found wrong is logged here (a parse process does not log)."""
        taken = ahead.results()
        for spooled, _ in taken:
            report(spooled.warning)
        return [s.entry for s, _ in taken], [s.raw for s, _ in taken], [p for _, p in taken]

    def _transaction(
        self,
        entries: list[SpoolEntry],
        raws: list[bytes | Exception],
        prepared: list[Prepared | None],
        isolate: bool,
    ) -> tuple[list[SpoolEntry], list[_Failure], list[tuple[SpoolEntry, Outcome]]]:
        """Process a batch in one transaction.

        Optimistically (isolate=False) without savepoints, reading ahead with one
        statement for the batch's lookups and writing what can wait with one statement
        per table at the end (store/batch.py). Any failure then rolls the whole batch
        back (_NeedsIsolation) and the caller redoes it with a SAVEPOINT per message and
        no batch state, so one bad message never takes the others' work with it.
        """
        committed: list[SpoolEntry] = []
        failed: list[_Failure] = []
        outcomes: list[tuple[SpoolEntry, Outcome]] = []
        with bounded_transaction(self.engine) as conn, self._batch(conn, isolate) as batch:
            if batch is not None:
                batch.size = len(entries)  # PostgreSQL: the block of ids it takes (store/ids.py)
                self._set_based(lambda: self.pipeline.read_ahead(conn, batch, _ready(prepared)))
            for entry, raw, pre in zip(entries, raws, prepared, strict=True):
                step = "read"
                try:
                    if isinstance(raw, Exception):
                        raise raw
                    step = "pipeline"
                    if isolate:
                        outcome = self._isolated(conn, entry, raw, pre)
                    else:
                        outcome = self.pipeline.process(conn, entry, raw, pre)
                    committed.append(entry)
                    outcomes.append((entry, outcome))
                except (OperationalError, InterfaceError):
                    raise  # the database itself is in trouble: give the whole batch back
                except Exception as e:  # noqa: BLE001 - a bug must not stop the worker
                    if not isolate:
                        raise _NeedsIsolation from e
                    failed.append(_failure(entry, step, e))
            if batch is not None:
                self._set_based(lambda: flush(conn, batch))
        return committed, failed, outcomes

    @staticmethod
    def _batch(
        conn: Connection, isolate: bool
    ) -> contextlib.AbstractContextManager[BatchState | None]:
        return contextlib.nullcontext() if isolate else batch_state(conn)

    @staticmethod
    def _set_based(work: Callable[[], None]) -> None:
        """A batch-wide read or write; if it fails, the batch is redone message by message."""
        try:
            work()
        except OperationalError:
            raise
        except Exception as e:  # noqa: BLE001 - the redo names the message at fault
            raise _NeedsIsolation from e

    def _optimistic(
        self,
        entries: list[SpoolEntry],
        raws: list[bytes | Exception],
        prepared: list[Prepared | None],
    ) -> tuple[list[SpoolEntry], list[_Failure], list[tuple[SpoolEntry, Outcome]]]:
        """The batch without savepoints; redone at once when PostgreSQL chose it as the
        victim of a deadlock with another daemon's batch (the other one went through)."""
        for attempt in range(CONFLICT_TRIES):
            try:
                return self._transaction(entries, raws, prepared, isolate=False)
            except OperationalError as e:
                if _conflict_code(e) is None or attempt == CONFLICT_TRIES - 1:
                    raise
                log.info("worker: batch of %d met another daemon's (%s); again", len(entries),
                         _conflict_code(e))  # fmt: skip
        raise AssertionError("unreachable")

    def _isolated(
        self, conn: Connection, entry: SpoolEntry, raw: bytes, pre: Prepared | None
    ) -> Outcome:
        """One message in its own savepoint; once more after a unique-key conflict."""
        try:
            with conn.begin_nested():
                return self.pipeline.process(conn, entry, raw, pre)
        except Exception as e:
            if not _unique_conflict(e):
                raise
            log.info("message %s: met a row another daemon committed; again", entry.name)
        with conn.begin_nested():  # now it sees that row: a duplicate, or a follow-up
            return self.pipeline.process(conn, entry, raw, pre)

    def drain(self) -> BatchResult:
        """Process until the spool is empty (tests, `mailgate process`, the bench)."""
        total = BatchResult()
        while True:
            r = self.process_batch()
            if r.handled == 0:
                self.spool.flush()
                self.pipeline.close()  # the parse processes end with the drain
                return total
            total.stored += r.stored
            total.duplicates += r.duplicates
            total.retried += r.retried
            total.shunted += r.shunted
            total.latencies += r.latencies

    def _report(self, error: Exception | None) -> None:
        if self.health is None:
            return
        if error is None:
            self.health.succeeded("worker")
        else:
            self.health.failed("worker", f"{type(error).__name__}: {error}"[:300])

    async def run(
        self,
        stop: asyncio.Event,
        wake: asyncio.Event,
        on_batch: Callable[[], None] | None = None,
        idle_poll: float = 1.0,
    ) -> None:
        """Process batches until `stop`; `wake` is set by sources after a spool write."""
        try:
            await self._run(stop, wake, on_batch, idle_poll)
        finally:
            # the parse processes end with the worker (waited for off the event loop)
            await asyncio.to_thread(self.pipeline.close)

    async def _run(
        self,
        stop: asyncio.Event,
        wake: asyncio.Event,
        on_batch: Callable[[], None] | None,
        idle_poll: float,
    ) -> None:
        backoff = Backoff(1.0, 60.0)
        while not stop.is_set():
            wake.clear()  # before the work: a wake-up during it is not lost
            try:
                r = await asyncio.to_thread(self.process_batch)
                backoff.reset()
                self._report(None)
                if r.handled and self.health is not None:
                    self.health.succeeded(COMPONENT)
            except (OperationalError, InterfaceError) as e:
                # the database is away: the sources keep spooling; retry, catch up later
                if self.health is not None:
                    self.health.failed(COMPONENT, error_line(e))
                self._report(e)
                await asyncio.sleep(backoff.next())
                continue
            except DatabaseReplaced as e:
                # one clear error; the sources keep spooling, the spool keeps every message
                self.halted = str(e)
                log.error("worker: %s", e)
                self._report(e)
                await stop.wait()
                return
            except Exception as e:  # noqa: BLE001 - logged in process_batch; wait and retry
                self._report(e)
                await asyncio.sleep(backoff.next())
                continue
            if r.handled:
                if on_batch is not None:
                    on_batch()
                continue
            # the pipe and other processes write without waking us: look again after a while
            await wait_for_wake(wake, stop, idle_poll)


def _unique_conflict(e: BaseException) -> bool:
    """A unique key met (maybe wrapped by the pipeline in StepFailed)."""
    return isinstance(e, IntegrityError) or isinstance(e.__cause__, IntegrityError)


def _conflict_code(e: BaseException) -> str | None:
    code = getattr(getattr(e, "orig", None), "sqlstate", None)
    return code if code in CONFLICT_SQLSTATES else None
