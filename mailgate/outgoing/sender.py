"""Drain outbox rows to the SMTP relay (or a local maildir when no relay is set).

A batch of due rows is claimed (outgoing/claims.py: customer-facing mail first, no class
starved, never one row to two senders), sent over a small pool of reused relay
connections (outgoing/relay.py), and every result of the batch is recorded in ONE
transaction. A crash between the relay's 2xx and that commit sends the row again once
its lease ran out, with the same Message-ID (fixed when the row was written): delivery
is at least once, never lost.

Per recipient: a 2xx recipient is done, a 4xx recipient is retried alone with capped
exponential backoff and jitter until the row's deadline, a 5xx recipient (or one still
refused at the deadline) is failed with a system note on the ticket. A row is `sent`
when no recipient is left to try and at least one got it, else `failed`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, Row, bindparam, update
from sqlalchemy.exc import OperationalError

from mailgate.bounces.verp import verp_address
from mailgate.config.model import Config
from mailgate.health import Health
from mailgate.outgoing.claims import claim, claim_in, release_all
from mailgate.outgoing.relay import DeliveryResult, Relay, RelayPool, deliver_maildir, is_done
from mailgate.pgp.keyring import Keyrings
from mailgate.pgp.outgoing import prepare_outgoing
from mailgate.runtime import Backoff, Clock, backoff_delay, utcnow, wait_for_wake
from mailgate.store.articles import system_article
from mailgate.store.audit import audit
from mailgate.store.outbox import outbox

log = logging.getLogger(__name__)

IDLE_CLOSE_SECONDS = 30.0  # relay connections unused this long are closed
RECORD_TRIES = 5  # a batch's results against a busy database

# a row's result: one statement built once, run as one executemany for a relay round
_RESULT = (
    update(outbox)
    .where(outbox.c.id == bindparam("row_id"))
    .values(claim_token=None, claimed_until=None)
)


def remaining(row: Row) -> list[str]:
    """The row's recipients still to try (no 2xx and no 5xx answer yet)."""
    return [r for r in row.rcpt_tos if not is_done(row.rcpt_results.get(r, ""))]


class Sender:
    def __init__(
        self,
        config: Config,
        engine: Engine,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
        *,
        keyrings: Keyrings,
    ):
        self.config = config
        self.engine = engine
        self.keyrings = keyrings
        self.clock = clock
        self.rng = rng or random.Random()
        self._pool: RelayPool | None = None
        self._pgp_lock = threading.Lock()  # keyrings and gpg-agents are not shared by threads
        self.health: Health | None = None  # set by app.py: "sender" reports each sweep

    @property
    def pool(self) -> RelayPool:
        if self._pool is not None and self._pool.config is not self.config:
            self.close()  # reloaded: the relay's settings may have changed
        if self._pool is None:
            self._pool = RelayPool(self.config, self.config.relay.connections)
        return self._pool

    def close(self) -> None:
        """Quit every relay connection and stop the pool's threads."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def send_due(self, limit: int = 10_000, *, keep_open: bool = False) -> tuple[int, int, int]:
        """Send due rows batch by batch (at most `limit`): returns (sent, deferred, failed)."""
        totals = [0, 0, 0]
        batch = self.config.relay.batch_size
        try:
            rows = claim(
                self.engine, self.clock(), min(limit, batch), self.config.relay.lease_seconds
            )
            while rows:
                limit -= len(rows)
                results = self._deliver(rows)
                counts, rows = self._record_batch(rows, results, min(limit, batch))
                for i, n in enumerate(counts):
                    totals[i] += n
        finally:
            if not keep_open:
                self.close()
        return totals[0], totals[1], totals[2]

    def _deliver(self, rows: list[Row]) -> list[DeliveryResult]:
        if not self.config.relay.host:
            return [self._attempt(None, row) for row in rows]
        return [f.result() for f in self.pool.run(self._job(row) for row in rows)]

    def _job(self, row: Row):  # type: ignore[no-untyped-def]
        return lambda relay: self._attempt(relay, row)

    def _attempt(self, relay: Relay | None, row: Row) -> DeliveryResult:
        rcpts = remaining(row)
        # PGP/MIME to customers whose key the queue holds; refuses decrypted content
        with self._pgp_lock:
            wire = prepare_outgoing(
                self.config,
                self.engine,
                self.keyrings,
                kind=row.kind,
                rcpt_tos=rcpts,
                raw=row.raw,
                ticket_id=row.ticket_id,
            )
        if wire.error:
            return DeliveryResult.every(rcpts, ("554 " if wire.permanent else "451 ") + wire.error)
        if relay is None:
            return deliver_maildir(self.config.outbox_maildir, row.message_id, rcpts, wire.raw)
        # VERP: a bounce comes back to an address that names this row (bounces/verp.py)
        mail_from = verp_address(self.config.secret, row.id, row.mail_from) if row.mail_from else ""
        return relay.send(mail_from, rcpts, wire.raw)

    def _record_batch(
        self, rows: list[Row], results: list[DeliveryResult], next_limit: int = 0
    ) -> tuple[tuple[int, int, int], list[Row]]:
        """Every result of one batch in one transaction, and in it the next batch claimed
        (up to `next_limit` rows): the sender takes SQLite's one write lock once per batch.

        The relay already has the mail: a busy database (SQLite's one writer is the
        worker's batch) is waited for, a few times, before the rows are left to their
        lease (then sent again, same Message-ID)."""
        for attempt in range(RECORD_TRIES):
            now = self.clock()
            counts = {"sent": 0, "deferred": 0, "failed": 0}
            try:
                with self.engine.begin() as conn:
                    updates: list[dict] = []  # the rows' new values, written together
                    for row, res in zip(rows, results, strict=True):
                        counts[self._record(conn, row, res, now, updates)] += 1
                    if updates:
                        conn.execute(_RESULT, updates)
                    lease = self.config.relay.lease_seconds
                    following = claim_in(conn, now, next_limit, lease) if next_limit > 0 else []
                return (counts["sent"], counts["deferred"], counts["failed"]), following
            except OperationalError:
                if attempt == RECORD_TRIES - 1:
                    raise
                log.warning("sender: database busy recording %d row(s), again", len(rows))
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def _record(
        self, conn: Connection, row: Row, res: DeliveryResult, now: datetime, updates: list[dict]
    ) -> str:
        if res.hold:
            return self._hold(conn, row, res.hold, now, updates)
        attempts = row.attempts + 1
        answers = {**row.rcpt_results, **res.answers}
        left = [r for r in row.rcpt_tos if not is_done(answers.get(r, ""))]
        if left and now >= row.deadline:
            for r in left:
                answers[r] = f"gave up at deadline: {answers.get(r) or res.detail}"
            left = []
        done = {"row_id": row.id, "attempts": attempts}
        newly_failed = {
            r: a
            for r, a in answers.items()
            if not is_done(row.rcpt_results.get(r, ""))
            and (a[:1] == "5" or a.startswith("gave up"))
        }
        log.info(
            "outbox %d %s: %s",
            row.id,
            row.message_id,
            "; ".join(f"{r} {answers.get(r, 'not tried')}" for r in row.rcpt_tos),
        )
        if newly_failed and row.ticket_id is not None:
            self._note_failure(conn, row, newly_failed, answers, now)
        if left:
            delay = backoff_delay(
                attempts - 1,
                self.config.relay.retry_initial_seconds,
                self.config.relay.retry_max_seconds,
                self.rng,
            )
            why = "; ".join(f"{r}: {answers[r]}" for r in left)
            updates.append(
                _values(
                    row,
                    done,
                    rcpt_results=answers,
                    last_error=why[:2000],
                    next_attempt_at=now + timedelta(seconds=delay),
                )
            )
            log.info("outbox %d: deferred %.0fs for %s", row.id, delay, ", ".join(left))
            return "deferred"
        failed = {r: a for r, a in answers.items() if not a.startswith("2")}
        status = "sent" if len(failed) < len(answers) else "failed"
        error = "; ".join(f"{r}: {a}" for r, a in failed.items())
        updates.append(
            _values(
                row,
                done,
                rcpt_results=answers,
                status=status,
                last_error=error[:2000],
                sent_at=now if status == "sent" else None,
            )
        )
        if failed:
            log.warning("outbox %d: %s: %s", row.id, status, error)
        return status

    def _hold(
        self, conn: Connection, row: Row, reason: str, now: datetime, updates: list[dict]
    ) -> str:
        """Keep the row for an admin: held with the reason, noted on its ticket once."""
        done = {"row_id": row.id, "attempts": row.attempts + 1}
        updates.append(_values(row, done, status="held", last_error=f"not sent: {reason}"[:2000]))
        if row.ticket_id is not None:  # once: a held row is tried again only when released
            system_article(conn, row.ticket_id, f"Mail {row.message_id} held: {reason}", now)
        log.warning("outbox %d: held: %s", row.id, reason)
        return "deferred"

    @staticmethod
    def _note_failure(
        conn: Connection, row: Row, failed: dict[str, str], answers: dict[str, str], now: datetime
    ) -> None:
        got = [r for r, a in answers.items() if a.startswith("2")]
        why = "; ".join(f"{r}: {a}" for r, a in failed.items())
        text = f"Delivery of {row.message_id} to {', '.join(failed)} failed: {why}"
        if got:
            text += f" (delivered to {', '.join(got)})"
        system_article(conn, row.ticket_id, text, now)
        audit(
            conn,
            row.ticket_id,
            "mailgate",
            "delivery-failed",
            now,
            message_id=row.message_id,
            recipients=sorted(failed),
            error=why[:500],
        )

    def _report(self, sent: int, deferred: int, error: Exception | None) -> None:
        """Into `health` (set by app.py): a sweep that only deferred mail is a failing relay."""
        if self.health is None:
            return
        if error is not None:
            self.health.failed("sender", f"{type(error).__name__}: {error}"[:300])
        elif deferred and not sent:
            self.health.failed(
                "sender", f"{deferred} row(s) deferred: the relay refused or is down"
            )
        else:
            self.health.succeeded("sender", f"sent {sent}" if sent else "")

    async def run(self, stop: asyncio.Event, wake: asyncio.Event, idle_poll: float = 1.0) -> None:
        idle_since = time.monotonic()
        if self.engine.dialect.name == "sqlite":
            taken = await asyncio.to_thread(release_all, self.engine)
            if taken:
                log.warning("sender: %d row(s) claimed by a sender that stopped: sent again", taken)
        failing = ""  # the error the sender is stuck on: its traceback is logged once
        backoff = Backoff(1.0, 10.0)
        try:
            while not stop.is_set():
                wake.clear()  # before the work: a wake-up during it is not lost
                try:
                    sent, deferred, failed = await asyncio.to_thread(self.send_due, keep_open=True)
                    self._report(sent, deferred, None)
                except Exception as e:  # noqa: BLE001 - the database may be briefly unavailable
                    line = (str(e).splitlines() or [""])[0][:300]
                    if f"{type(e).__name__}: {line}" != failing:
                        log.exception("sender: sweep failed (retrying with backoff)")
                        failing = f"{type(e).__name__}: {line}"
                    self._report(0, 0, e)
                    await wait_for_wake(wake, stop, backoff.next())
                    continue
                if failing:
                    log.info("sender: working again after %s", failing)
                    failing = ""
                    backoff.reset()
                if sent or failed:
                    idle_since = time.monotonic()
                    continue
                if self._pool is not None and time.monotonic() - idle_since > IDLE_CLOSE_SECONDS:
                    await asyncio.to_thread(self._pool.close)  # reopened on the next batch
                await wait_for_wake(wake, stop, idle_poll)
        finally:
            await asyncio.to_thread(self.close)


def _values(row: Row, done: dict, **values: object) -> dict:
    """Every column `_RESULT` sets: those a result leaves alone keep what the claim read
    (a claimed row is pending and not sent; under its lease only this sender writes it)."""
    keep = {"status": "pending", "rcpt_results": row.rcpt_results, "last_error": "",
            "next_attempt_at": row.next_attempt_at, "sent_at": None}  # fmt: skip
    return {**keep, **done, **values}
