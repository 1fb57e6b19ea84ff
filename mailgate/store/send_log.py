"""What the governor counts: one line per recipient of every queued outbox row."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select

from mailgate.config.governor import GovernorSettings
from mailgate.db.models import OutboxRow, SendLog
from mailgate.outgoing.compose import Outgoing
from mailgate.outgoing.governor import (
    AUTOMATIC_KINDS,
    DAY,
    HOUR,
    MINUTE,
    Counts,
    Mail,
    is_notification,
)

send_log: Table = SendLog.__table__  # type: ignore[assignment]
outbox: Table = OutboxRow.__table__  # type: ignore[assignment]

NOT_SENDING = ("held", "dropped", "digested")  # rows that do not count against a cap


def _count(conn: Connection, *where: Any) -> int:
    return conn.execute(
        select(func.count())
        .select_from(send_log.join(outbox, outbox.c.id == send_log.c.outbox_id))
        .where(*where, outbox.c.status.not_in(NOT_SENDING))
    ).scalar_one()


def counts_for(conn: Connection, mail: Mail, now: datetime, caps: GovernorSettings) -> Counts:
    """What `mail`'s caps need counted, each an indexed count (nothing else is read)."""
    if not caps.enabled:
        return Counts()
    addr = send_log.c.address == mail.address
    hour = send_log.c.created_at > now - timedelta(seconds=HOUR)
    day = send_log.c.created_at > now - timedelta(seconds=DAY)
    auto = send_log.c.kind.in_(AUTOMATIC_KINDS)
    values: dict[str, int] = {}
    if mail.kind == "ack" and caps.ack_per_queue_minute:
        minute = send_log.c.created_at > now - timedelta(seconds=MINUTE)
        values["acks_queue_minute"] = _count(
            conn, send_log.c.queue == mail.queue, send_log.c.kind == "ack", minute
        )
    if mail.kind in AUTOMATIC_KINDS:
        if caps.auto_per_address_hour:
            values["auto_hour"] = _count(conn, addr, auto, hour)
        if caps.auto_per_address_day:
            values["auto_day"] = _count(conn, addr, auto, day)
    if mail.ticket_id is not None:
        on_ticket = (addr, send_log.c.ticket_id == mail.ticket_id, hour)
        if caps.per_ticket_address_hour:
            values["ticket_hour"] = _count(conn, *on_ticket)
        if is_notification(mail.kind) and caps.notify_per_agent_ticket_hour:
            values["notify_ticket_hour"] = _count(
                conn, *on_ticket, send_log.c.kind.like("notify-%")
            )
    return Counts(**values)


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
