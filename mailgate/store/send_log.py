"""What the governor counts: one line per recipient of every queued outbox row."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, insert, select

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


def _count_stmt(*where: Any) -> Any:
    return (
        select(func.count())
        .select_from(send_log.join(outbox, outbox.c.id == send_log.c.outbox_id))
        .where(*where, outbox.c.status.not_in(NOT_SENDING))
    )


# built once with bind parameters: building a statement per count was most of its cost
_c = send_log.c
_ADDR, _HOUR, _DAY = (
    _c.address == bindparam("address"),
    _c.created_at > bindparam("hour"),
    _c.created_at > bindparam("day"),
)
_ON_TICKET = (_ADDR, _c.ticket_id == bindparam("ticket_id"), _HOUR)
_AUTO = _c.kind.in_(AUTOMATIC_KINDS)
_ACKS_QUEUE_MINUTE = _count_stmt(
    _c.queue == bindparam("queue"), _c.kind == "ack", _c.created_at > bindparam("minute")
)
_AUTO_HOUR = _count_stmt(_ADDR, _AUTO, _HOUR)
_AUTO_DAY = _count_stmt(_ADDR, _AUTO, _DAY)
_TICKET_HOUR = _count_stmt(*_ON_TICKET)
_NOTIFY_TICKET_HOUR = _count_stmt(*_ON_TICKET, _c.kind.like("notify-%"))


def counts_for(conn: Connection, mail: Mail, now: datetime, caps: GovernorSettings) -> Counts:
    """What `mail`'s caps need counted, each an indexed count, in one statement."""
    if not caps.enabled:
        return Counts()
    params = {
        "address": mail.address,
        "queue": mail.queue,
        "ticket_id": mail.ticket_id,
        "minute": now - timedelta(seconds=MINUTE),
        "hour": now - timedelta(seconds=HOUR),
        "day": now - timedelta(seconds=DAY),
    }
    wanted: list[tuple[str, Any]] = []
    if mail.kind == "ack" and caps.ack_per_queue_minute:
        wanted.append(("acks_queue_minute", _ACKS_QUEUE_MINUTE))
    if mail.kind in AUTOMATIC_KINDS:
        if caps.auto_per_address_hour:
            wanted.append(("auto_hour", _AUTO_HOUR))
        if caps.auto_per_address_day:
            wanted.append(("auto_day", _AUTO_DAY))
    if mail.ticket_id is not None:
        if caps.per_ticket_address_hour:
            wanted.append(("ticket_hour", _TICKET_HOUR))
        if is_notification(mail.kind) and caps.notify_per_agent_ticket_hour:
            wanted.append(("notify_ticket_hour", _NOTIFY_TICKET_HOUR))
    if not wanted:
        return Counts()
    names = tuple(name for name, _ in wanted)
    row = conn.execute(_all_counts(names, tuple(stmt for _, stmt in wanted)), params).one()
    return Counts(**dict(zip(names, row, strict=True)))


@functools.cache
def _all_counts(names: tuple[str, ...], stmts: tuple[Any, ...]) -> Any:
    """The wanted counts as one statement (a scalar subquery each, each on its index)."""
    return select(*(stmt.scalar_subquery().label(n) for n, stmt in zip(names, stmts, strict=True)))


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
