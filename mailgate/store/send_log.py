"""What the governor counts: one line per recipient of every queued outbox row."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, Table, func, insert, select

from mailgate.db.models import OutboxRow, SendLog
from mailgate.outgoing.compose import Outgoing
from mailgate.outgoing.governor import DAY, MINUTE, Sent

send_log: Table = SendLog.__table__  # type: ignore[assignment]
outbox: Table = OutboxRow.__table__  # type: ignore[assignment]

NOT_SENDING = ("held", "dropped")  # rows that do not count against a cap


def recent_to(conn: Connection, address: str, now: datetime) -> list[Sent]:
    """Mail queued to `address` in the last day that is going or went out."""
    rows = conn.execute(
        select(send_log.c.kind, send_log.c.ticket_id, send_log.c.created_at)
        .join(outbox, outbox.c.id == send_log.c.outbox_id)
        .where(
            send_log.c.address == address.lower(),
            send_log.c.created_at > now - timedelta(seconds=DAY),
            outbox.c.status.not_in(NOT_SENDING),
        )
    ).all()
    return [Sent(r.kind, r.ticket_id, (now - r.created_at).total_seconds()) for r in rows]


def acks_last_minute(conn: Connection, queue: str, now: datetime) -> int:
    return conn.execute(
        select(func.count())
        .select_from(send_log.join(outbox, outbox.c.id == send_log.c.outbox_id))
        .where(
            send_log.c.queue == queue,
            send_log.c.kind == "ack",
            send_log.c.created_at > now - timedelta(seconds=MINUTE),
            outbox.c.status.not_in(NOT_SENDING),
        )
    ).scalar_one()


def log_sends(conn: Connection, outbox_id: int, out: Outgoing, queue: str, now: datetime) -> None:
    conn.execute(
        insert(send_log),
        [
            {
                "outbox_id": outbox_id,
                "created_at": now,
                "address": a.lower(),
                "ticket_id": out.ticket_id,
                "queue": queue,
                "kind": out.kind,
            }
            for a in out.rcpt_tos
        ],
    )
