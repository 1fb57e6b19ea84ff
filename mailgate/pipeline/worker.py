"""The worker: claim spooled messages, run the pipeline, commit, then remove the files.

A batch of messages shares one database transaction (one durable commit); each message
runs inside its own SAVEPOINT, so a message that fails rolls back alone and is retried
or shunted with the stage and reason. Spool files are removed only after the commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from mailgate.agents import handle as agent_mail
from mailgate.agents.notifications import notify_customer_mail
from mailgate.autoresponse.policy import should_respond
from mailgate.config.model import Config
from mailgate.outgoing import customer_mails
from mailgate.parse.limits import ParseRejected
from mailgate.parse.message import parse
from mailgate.pgp.incoming import open_incoming
from mailgate.pgp.keyring import Keyrings
from mailgate.pipeline.classify import classify
from mailgate.pipeline.decide import Decision, decide
from mailgate.pipeline.thread import ThreadLookups, choose
from mailgate.queues.routing import route
from mailgate.runtime import Backoff, Clock, utcnow, wait_for_wake
from mailgate.spool import Spool, SpoolEntry
from mailgate.store import pgp_secrets
from mailgate.store import tickets as store
from mailgate.store.autoresponses import last_autoresponse, record_autoresponse
from mailgate.store.lookups import thread_lookups
from mailgate.store.outbox import add_outbox

log = logging.getLogger(__name__)


class _NeedsIsolation(Exception):
    """A message failed in an optimistic batch: redo the batch with savepoints."""


class Rejected(Exception):
    """The message cannot be processed, ever: shunt it at once with this reason."""

    def __init__(self, stage: str, reason: str):
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


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
class Outcome:
    ticket_id: int
    article_id: int | None
    action: str
    queues: tuple[str, ...]
    ack: bool


def _ticket_queue(lookups: ThreadLookups, d: Decision) -> str:
    """The queue of the ticket a follow-up joins, when the lookups already know it."""
    for t in (lookups.tagged, *lookups.referenced):
        if t is not None and t.id == d.ticket_id:
            return t.queue
    return ""


class Pipeline:
    """The per-message stages, run on the batch's connection and transaction."""

    def __init__(self, config: Config, clock: Clock = utcnow, *, keyrings: Keyrings):
        self.config = config
        self.clock = clock
        self.keyrings = keyrings
        self.ours = config.our_addresses
        self.agents = config.agent_addresses

    def process(self, conn: Connection, entry: SpoolEntry, raw: bytes) -> Outcome:
        cfg = self.config
        now = self.clock()
        try:
            p = parse(raw)
        except ParseRejected as e:
            raise Rejected("parse", e.reason) from e
        queues = route(entry.envelope, p, cfg)
        if not queues:
            rcpts = ", ".join(entry.envelope.rcpt_tos) or "none"
            raise Rejected("route", f"no queue for recipients ({rcpts}) or To/Cc headers")
        p, opened = open_incoming(cfg, queues, p, raw, self.keyrings)  # text: ciphertext hidden
        by_agent = agent_mail.handle(conn, cfg, entry.envelope, p, raw, now, self.keyrings)
        if by_agent is not None:  # an authenticated agent reply: commands, answer, notes
            return Outcome(by_agent.ticket_id, by_agent.article_id, by_agent.action, queues, False)
        primary = cfg.queue(queues[0])
        assert primary is not None
        verdict = classify(p, self.ours, cfg.main.hostname)
        lookups = thread_lookups(conn, p)
        window = primary.close.reopen_window_days
        choice = choose(
            p.from_addr,
            lookups,
            self.agents,
            now,
            None if window < 0 else timedelta(days=window),
            colleagues=primary.colleagues_may_follow_up,
        )
        last = (
            last_autoresponse(conn, primary.name, p.from_addr)
            if (choice.ticket_id is None and p.from_addr)
            else None
        )
        ack = should_respond(
            verdict=verdict,
            sender=p.from_addr,
            enabled=primary.autoresponse.enabled,
            period=timedelta(hours=primary.autoresponse.period_hours),
            last_sent_at=last,
            now=now,
        )
        d = decide(
            parsed=p,
            raw=raw,
            queues=queues,
            verdict=verdict,
            choice=choice,
            acknowledge=ack,
            initial_priority=primary.priority.initial,
            our_addresses=self.ours,
        )
        applied = store.apply(conn, d, p, raw, now, ticket_queue=_ticket_queue(lookups, d))
        pgp_secrets.save(conn, opened, applied, p.from_addr, now)  # decrypted parts, agent-only
        acked = False
        if applied.created and d.acknowledge.send:
            out = customer_mails.ack(cfg, primary, applied.ticket_id, p, d, now)
            deadline = now + timedelta(hours=cfg.relay.give_up_after_hours)
            acked = add_outbox(conn, out, now, deadline)
            if acked:
                record_autoresponse(conn, primary.name, p.from_addr, now)
        if applied.article_id is not None and d.customer_activity:
            notify_customer_mail(
                conn,
                cfg,
                applied.ticket_id,
                created=applied.created,
                sender=p.from_addr,
                cause=d.dedupe_key,
                now=now,
            )
        action = "duplicate" if applied.article_id is None else d.action
        return Outcome(applied.ticket_id, applied.article_id, action, queues, acked)


class Worker:
    def __init__(
        self,
        config: Config,
        engine: Engine,
        spool: Spool,
        clock: Clock = utcnow,
        *,
        keyrings: Keyrings,
    ):
        self.config = config
        self.engine = engine
        self.spool = spool
        self.pipeline = Pipeline(config, clock, keyrings=keyrings)

    def process_batch(self, limit: int | None = None) -> BatchResult:
        """Claim up to `limit` messages and process them in one transaction."""
        entries = self.spool.claim(limit or self.config.worker.batch_size)
        result = BatchResult()
        if not entries:
            return result
        try:
            try:
                committed, failed, outcomes = self._transaction(entries, isolate=False)
            except _NeedsIsolation:
                # something failed: redo the batch with each message in its own savepoint
                committed, failed, outcomes = self._transaction(entries, isolate=True)
        except Exception:
            log.exception(
                "worker: batch of %d not committed; messages stay in the spool", len(entries)
            )
            self.spool.release(entries)
            raise
        self.spool.done(committed)
        now = time.time()
        for entry, o in outcomes:
            if o.action == "duplicate":
                result.duplicates += 1
            else:
                result.stored += 1
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
        for entry, stage, reason, final in failed:
            first_line = reason.splitlines()[0] if reason else ""
            if final:
                self.spool.shunt_now(entry, stage, reason)
                shunted = True
            else:
                shunted = self.spool.fail(entry, stage, reason, self.config.worker.max_attempts)
            if shunted:
                result.shunted += 1
                log.warning("message %s: shunted at %s: %s", entry.name, stage, first_line)
            else:
                result.retried += 1
                log.warning(
                    "message %s: failed at %s (will retry): %s", entry.name, stage, first_line
                )
        return result

    def _transaction(
        self, entries: list[SpoolEntry], isolate: bool
    ) -> tuple[list[SpoolEntry], list[tuple[SpoolEntry, str, str, bool]], list]:
        """Process a batch in one transaction.

        Optimistically (isolate=False) without savepoints: two statements fewer per
        message. Any failure then rolls the whole batch back (_NeedsIsolation) and the
        caller redoes it with a SAVEPOINT per message, so one bad message never takes the
        others' work with it.
        """
        committed: list[SpoolEntry] = []
        failed: list[tuple[SpoolEntry, str, str, bool]] = []
        outcomes: list[tuple[SpoolEntry, Outcome]] = []
        with self.engine.begin() as conn:
            for entry in entries:
                stage = "read"
                try:
                    raw = self.spool.read(entry)
                    stage = "pipeline"
                    if isolate:
                        with conn.begin_nested():
                            outcome = self.pipeline.process(conn, entry, raw)
                    else:
                        outcome = self.pipeline.process(conn, entry, raw)
                    committed.append(entry)
                    outcomes.append((entry, outcome))
                except OperationalError:
                    raise  # the database itself is in trouble: give the whole batch back
                except Exception as e:  # noqa: BLE001 - a bug must not stop the worker
                    if not isolate:
                        raise _NeedsIsolation from e
                    if isinstance(e, Rejected):
                        failed.append((entry, e.stage, e.reason, True))
                    else:
                        tb = traceback.format_exc(limit=8)
                        failed.append((entry, stage, f"{type(e).__name__}: {e}\n{tb}", False))
        return committed, failed, outcomes

    def drain(self) -> BatchResult:
        """Process until the spool is empty (tests, `mailgate process`, the bench)."""
        total = BatchResult()
        while True:
            r = self.process_batch()
            if r.handled == 0:
                self.spool.flush()
                return total
            total.stored += r.stored
            total.duplicates += r.duplicates
            total.retried += r.retried
            total.shunted += r.shunted
            total.latencies += r.latencies

    async def run(
        self,
        stop: asyncio.Event,
        wake: asyncio.Event,
        on_batch: Callable[[], None] | None = None,
        idle_poll: float = 1.0,
    ) -> None:
        """Process batches until `stop`; `wake` is set by sources after a spool write."""
        backoff = Backoff(1.0, 60.0)
        while not stop.is_set():
            wake.clear()  # before the work: a wake-up during it is not lost
            try:
                r = await asyncio.to_thread(self.process_batch)
                backoff.reset()
            except Exception:  # noqa: BLE001 - logged in process_batch; wait and retry
                await asyncio.sleep(backoff.next())
                continue
            if r.handled:
                if on_batch is not None:
                    on_batch()
                continue
            # the pipe and other processes write without waking us: look again after a while
            await wait_for_wake(wake, stop, idle_poll)
