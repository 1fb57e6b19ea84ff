"""The outbox: mail queued in the transaction that caused it, sent by `outgoing.sender`."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, insert, update

from mailgate.config.governor import GovernorSettings
from mailgate.db.models import OutboxRow
from mailgate.outgoing.compose import Outgoing
from mailgate.outgoing.governor import AUTOMATIC_KINDS, PASS, Mail, Verdict, paused
from mailgate.store import fast
from mailgate.store.addresses import paused_until
from mailgate.store.articles import add_thread_ref
from mailgate.store.batch import current
from mailgate.store.ids import new_id
from mailgate.store.send_log import log_sends, verdict_for
from mailgate.store.sql import insert_ignore_stmt

log = logging.getLogger(__name__)

outbox: Table = OutboxRow.__table__  # type: ignore[assignment]


# the sender's classes (outgoing/claims.py): customer-facing first, reminders and digests last
CUSTOMER_FACING = frozenset({"ack", "answer", "closed", "escalated", "survey"})
LATER = frozenset({"reminder", "digest"})


def priority_of(kind: str) -> int:
    return 0 if kind in CUSTOMER_FACING else 2 if kind in LATER else 1


@functools.cache
def _add_stmt(dialect: str) -> Any:
    return insert_ignore_stmt(dialect, outbox).returning(outbox.c.id)


_HELD = insert(outbox)  # no ON CONFLICT: a Message-ID queued already fails the flush


def outbox_deadline(now: datetime, hours: float) -> datetime:
    return now + timedelta(hours=hours)


def add_outbox(
    conn: Connection,
    out: Outgoing,
    now: datetime,
    deadline: datetime,
    governor: GovernorSettings | None = None,
    queue: str = "",
    budget: bool = True,
) -> bool:
    """Queue a message; False if one with this Message-ID is already queued (idempotent).

    With `governor`, a message over one of its caps is queued as `held` with the reason
    (outgoing/governor.py); it goes out only when released (`mailgate outbox release`).
    """
    batch = current(conn)
    if batch is not None and out.message_id in batch.outbox_ids:
        return False  # queued earlier in this batch, as ON CONFLICT would find
    verdict = _govern(conn, out, now, governor, queue, budget) if governor else PASS
    row = {
        "created_at": now,
        "ticket_id": out.ticket_id,
        "kind": out.kind,
        "priority": priority_of(out.kind),
        "rcpt_results": {},
        "mail_from": out.mail_from,
        "rcpt_tos": list(out.rcpt_tos),
        "message_id": out.message_id,
        "raw": out.raw,
        "status": "held" if verdict.hold else "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "deadline": deadline,
        "last_error": verdict.reason,
    }
    if batch is None:
        outbox_id = fast.scalar(conn, _add_stmt(conn.dialect.name), row)
    else:  # held to the flush; one already in the database makes the flush fail and the
        outbox_id = new_id(conn, batch, "outbox")  # batch is redone message by message
        batch.hold("outbox", _HELD, {"id": outbox_id, **row})
        batch.outbox_ids.add(out.message_id)
    if outbox_id is None:  # ON CONFLICT: this Message-ID is queued already
        return False
    log_sends(conn, outbox_id, out, queue, now, counted=not verdict.hold)
    if out.ticket_id is not None:
        add_thread_ref(conn, out.message_id, out.ticket_id, ours=True)  # at the flush
    return True


_logged: dict[tuple[str, str], int] = {}  # (cap, key) -> the window last logged


def _govern(
    conn: Connection,
    out: Outgoing,
    now: datetime,
    caps: GovernorSettings,
    queue: str,
    budget: bool = True,
) -> Verdict:
    for address in out.rcpt_tos:
        mail = Mail(out.kind, address.lower(), out.ticket_id, queue, budget)
        until = paused_until(conn, mail.address) if out.kind in AUTOMATIC_KINDS else None
        verdict = paused(mail, until, now)
        if verdict.hold:
            return verdict
        verdict = verdict_for(conn, mail, now, caps)
        if verdict.hold:
            # once per cap, key and window, not once per message
            key = (verdict.cap, queue if verdict.cap == "ack_per_queue_minute" else address)
            window = int(now.timestamp()) // verdict.window_seconds
            if _logged.get(key) != window:
                _logged[key] = window
                log.warning("outbox %s %s: %s", out.kind, out.message_id, verdict.reason)
            return verdict
    return PASS


def queue_mails(
    conn: Connection,
    mails: Iterable[Outgoing],
    now: datetime,
    give_up_after_hours: float,
    governor: GovernorSettings | None = None,
) -> int:
    """Queue several messages with the relay's deadline; the number newly queued."""
    deadline = outbox_deadline(now, give_up_after_hours)
    return sum(add_outbox(conn, m, now, deadline, governor) for m in mails)


def release_held(
    conn: Connection, ids: list[int] | None, now: datetime, give_up_after_hours: float
) -> int:
    """Held rows (all when `ids` is None) back to pending, due now, with a fresh deadline."""
    where = [outbox.c.status == "held"]
    if ids is not None:
        where.append(outbox.c.id.in_(ids))
    return conn.execute(
        update(outbox)
        .where(*where)
        .values(
            status="pending",
            next_attempt_at=now,
            deadline=outbox_deadline(now, give_up_after_hours),
            last_error="",
        )
    ).rowcount


def drop_held(conn: Connection, ids: list[int]) -> int:
    """Held rows marked dropped (kept, never sent)."""
    return conn.execute(
        update(outbox)
        .where(outbox.c.status == "held", outbox.c.id.in_(ids))
        .values(status="dropped", last_error=outbox.c.last_error + " (dropped by hand)")
    ).rowcount
