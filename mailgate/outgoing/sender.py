"""Drain outbox rows to the SMTP relay (or a local maildir when no relay is set).

A row is marked sent only after the relay answered 2xx for it. Temporary failures
(4xx, connection errors) retry with capped exponential backoff and jitter until the row's
deadline; permanent ones (5xx, or the deadline) mark the row failed and put a system
note on its ticket. Message-IDs are fixed when the row is written, so a resend after a
crash between the relay's 2xx and our commit carries the same Message-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select, update

from mailgate.config.model import Config
from mailgate.config.secrets import SecretError
from mailgate.outgoing import relay_auth
from mailgate.outgoing.smtputf8 import Smtputf8Missing, mail_options
from mailgate.pgp.keyring import Keyrings
from mailgate.pgp.outgoing import prepare_outgoing
from mailgate.runtime import Clock, backoff_delay, utcnow, wait_for_wake
from mailgate.store.articles import system_article
from mailgate.store.audit import audit
from mailgate.store.outbox import outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    permanent: bool
    detail: str
    relay_unreachable: bool = False  # the relay itself failed, not this message


def deliver_maildir(root: Path, message_id: str, raw: bytes) -> DeliveryResult:
    """Write one message into a maildir (tmp, fsync, rename to new)."""
    for d in ("tmp", "new", "cur"):
        (root / d).mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}.{os.getpid()}.{abs(hash(message_id)) % 10**8}.mailgate"
    tmp = root / "tmp" / name
    with open(tmp, "wb") as f:
        f.write(raw.replace(b"\r\n", b"\n"))
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, root / "new" / name)
    return DeliveryResult(True, False, f"written to {root / 'new' / name}")


class Relay:
    """One SMTP connection reused across a sweep."""

    def __init__(self, config: Config):
        self.settings = config.relay
        self.config = config
        self.base = config.path.parent
        self.smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        ctx = ssl.create_default_context()
        if s.tls:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                s.host, s.port, timeout=s.timeout_seconds, context=ctx
            )
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
            if s.starttls:
                smtp.starttls(context=ctx)
        relay_auth.login(smtp, self.config)
        return smtp

    def send(self, mail_from: str, rcpts: list[str], raw: bytes) -> DeliveryResult:
        try:
            if self.smtp is None:
                self.smtp = self._connect()
            options = mail_options(self.smtp, mail_from, rcpts, raw)
            refused = self.smtp.sendmail(mail_from, rcpts, raw, mail_options=options)
        except Smtputf8Missing as e:
            return DeliveryResult(False, True, str(e))
        except smtplib.SMTPRecipientsRefused as e:
            codes = [c for c, _ in e.recipients.values()]
            permanent = all(500 <= c < 600 for c in codes)
            return DeliveryResult(False, permanent, f"recipients refused: {e.recipients}")
        except smtplib.SMTPResponseException as e:
            self.close()
            permanent = 500 <= e.smtp_code < 600
            msg = e.smtp_error.decode(errors="replace") if isinstance(e.smtp_error, bytes) else e
            return DeliveryResult(False, permanent, f"{e.smtp_code} {msg}")
        except (TimeoutError, OSError, smtplib.SMTPException, SecretError) as e:
            self.close()
            return DeliveryResult(False, False, f"{type(e).__name__}: {e}")
        if refused:
            # some recipients took it: those must not get it twice, so the row is done
            return DeliveryResult(True, False, f"partly refused: {refused}")
        return DeliveryResult(True, False, "250 accepted")

    def close(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.smtp.quit()
            self.smtp = None


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

    def _due(self, now: datetime, limit: int) -> list:
        with self.engine.connect() as conn:
            return conn.execute(
                select(
                    outbox.c.id,
                    outbox.c.mail_from,
                    outbox.c.rcpt_tos,
                    outbox.c.raw,
                    outbox.c.message_id,
                    outbox.c.attempts,
                    outbox.c.deadline,
                    outbox.c.ticket_id,
                    outbox.c.kind,
                )
                .where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
                .order_by(outbox.c.next_attempt_at, outbox.c.id)
                .limit(limit)
            ).all()

    def send_due(self, limit: int = 100) -> tuple[int, int, int]:
        """One sweep: returns (sent, deferred, failed)."""
        rows = self._due(self.clock(), limit)
        if not rows:
            return 0, 0, 0
        relay = Relay(self.config) if self.config.relay.host else None
        sent = deferred = failed = 0
        try:
            for row in rows:
                # PGP/MIME to customers whose key the queue holds; refuses decrypted content
                wire = prepare_outgoing(
                    self.config,
                    self.engine,
                    self.keyrings,
                    kind=row.kind,
                    rcpt_tos=row.rcpt_tos,
                    raw=row.raw,
                    ticket_id=row.ticket_id,
                )
                if wire.error:
                    res = DeliveryResult(False, wire.permanent, wire.error)
                elif relay is None:
                    res = deliver_maildir(self.config.outbox_maildir, row.message_id, wire.raw)
                else:
                    res = relay.send(row.mail_from, list(row.rcpt_tos), wire.raw)
                outcome = self._record(row, res)
                sent += outcome == "sent"
                deferred += outcome == "deferred"
                failed += outcome == "failed"
                if res.relay_unreachable:
                    # one connect timeout per pass, not one per waiting row
                    deferred += self._postpone(rows[rows.index(row) + 1 :], res.detail)
                    break
        finally:
            if relay is not None:
                relay.close()
        return sent, deferred, failed

    def _postpone(self, rows: list, why: str) -> int:
        """Give rows not tried in this pass the backoff of a first failure (attempts kept)."""
        if not rows:
            return 0
        now = self.clock()
        delay = backoff_delay(
            0,
            self.config.relay.retry_initial_seconds,
            self.config.relay.retry_max_seconds,
            self.rng,
        )
        with self.engine.begin() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([r.id for r in rows]), outbox.c.status == "pending")
                .values(
                    next_attempt_at=now + timedelta(seconds=delay),
                    last_error=f"not tried: relay unreachable ({why})"[:2000],
                )
            )
        return len(rows)

    def _record(self, row, res: DeliveryResult) -> str:  # type: ignore[no-untyped-def]
        now = self.clock()
        attempts = row.attempts + 1
        with self.engine.begin() as conn:
            if res.ok:
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id == row.id)
                    .values(status="sent", sent_at=now, attempts=attempts, last_error="")
                )
                log.info("outbox %d %s: sent to %s", row.id, row.message_id, row.rcpt_tos)
                return "sent"
            if res.permanent or now >= row.deadline:
                why = res.detail if res.permanent else f"gave up at deadline: {res.detail}"
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id == row.id)
                    .values(status="failed", attempts=attempts, last_error=why[:2000])
                )
                if row.ticket_id is not None:
                    system_article(
                        conn,
                        row.ticket_id,
                        f"Delivery of {row.message_id} to {', '.join(row.rcpt_tos)} failed: {why}",
                        now,
                    )
                    audit(
                        conn,
                        row.ticket_id,
                        "mailgate",
                        "delivery-failed",
                        now,
                        message_id=row.message_id,
                        error=why[:500],
                    )
                log.warning("outbox %d: permanent failure: %s", row.id, why)
                return "failed"
            delay = backoff_delay(
                attempts - 1,
                self.config.relay.retry_initial_seconds,
                self.config.relay.retry_max_seconds,
                self.rng,
            )
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row.id)
                .values(
                    attempts=attempts,
                    last_error=res.detail[:2000],
                    next_attempt_at=now + timedelta(seconds=delay),
                )
            )
            log.info("outbox %d: deferred %.0fs: %s", row.id, delay, res.detail)
            return "deferred"

    async def run(self, stop: asyncio.Event, wake: asyncio.Event, idle_poll: float = 1.0) -> None:
        while not stop.is_set():
            wake.clear()  # before the work: a wake-up during it is not lost
            try:
                sent, _deferred, failed = await asyncio.to_thread(self.send_due)
            except Exception:  # noqa: BLE001 - the database may be briefly unavailable
                log.exception("sender: sweep failed")
                sent = failed = 0
            if sent or failed:
                continue
            await wait_for_wake(wake, stop, idle_poll)
