"""The outbox: mail queued in the transaction that caused it, sent by `outgoing.sender`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Connection, Table

from mailgate.db.models import OutboxRow
from mailgate.outgoing.compose import Outgoing
from mailgate.store.articles import add_thread_ref
from mailgate.store.sql import insert_ignore

outbox: Table = OutboxRow.__table__  # type: ignore[assignment]


# the sender's classes (outgoing/claims.py): customer-facing first, reminders and digests last
CUSTOMER_FACING = frozenset({"ack", "answer", "closed", "escalated"})
LATER = frozenset({"reminder", "digest"})


def priority_of(kind: str) -> int:
    return 0 if kind in CUSTOMER_FACING else 2 if kind in LATER else 1


def outbox_deadline(now: datetime, hours: float) -> datetime:
    return now + timedelta(hours=hours)


def add_outbox(conn: Connection, out: Outgoing, now: datetime, deadline: datetime) -> bool:
    """Queue a message; False if one with this Message-ID is already queued (idempotent)."""
    res = insert_ignore(
        conn,
        outbox,
        {
            "created_at": now,
            "ticket_id": out.ticket_id,
            "kind": out.kind,
            "priority": priority_of(out.kind),
            "rcpt_results": {},
            "mail_from": out.mail_from,
            "rcpt_tos": list(out.rcpt_tos),
            "message_id": out.message_id,
            "raw": out.raw,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "deadline": deadline,
            "last_error": "",
        },
    )
    if res.rowcount == 0:
        return False
    if out.ticket_id is not None:
        add_thread_ref(conn, out.message_id, out.ticket_id)
    return True


def queue_mails(
    conn: Connection, mails: Iterable[Outgoing], now: datetime, give_up_after_hours: float
) -> int:
    """Queue several messages with the relay's deadline; the number newly queued."""
    deadline = outbox_deadline(now, give_up_after_hours)
    return sum(add_outbox(conn, m, now, deadline) for m in mails)
