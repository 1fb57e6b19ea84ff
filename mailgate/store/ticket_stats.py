"""The ticket statistics of `mailgate stats` (H-Sphere's statistics table): tickets
received this month, this week, yesterday and today; unassigned; open by status; SLA
breaches now — per queue (every queue a ticket is visible in) and in total (each ticket
once). A handful of aggregate queries, whatever the number of tickets.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Table, and_, case, func, select

from mailgate.db.models import OPEN_STATUSES, Ticket, TicketQueue
from mailgate.store.search import sla_condition

tickets: Table = Ticket.__table__  # type: ignore[assignment]
ticket_queues: Table = TicketQueue.__table__  # type: ignore[assignment]
PERIODS = ("month", "week", "yesterday", "today")


Periods = dict[str, tuple[datetime, datetime]]


def period_starts(now: datetime, tz: ZoneInfo | None = None) -> Periods:
    """Each period as [start, end) in UTC; days begin at midnight in `tz` (default UTC),
    weeks on Monday."""
    local = now.astimezone(tz or UTC)
    midnight = datetime.combine(local.date(), time(), local.tzinfo)
    month = midnight.replace(day=1)
    week = midnight - timedelta(days=local.weekday())
    yesterday = midnight - timedelta(days=1)
    return {
        "month": (month.astimezone(UTC), now),
        "week": (week.astimezone(UTC), now),
        "yesterday": (yesterday.astimezone(UTC), midnight.astimezone(UTC)),
        "today": (midnight.astimezone(UTC), now),
    }


def _count(cond: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def _figures(periods: Periods) -> list[ColumnElement[int]]:
    t = tickets.c
    is_open = t.status.in_(OPEN_STATUSES)
    cols = [
        _count(and_(t.created_at >= start, t.created_at < end)).label(name)
        for name, (start, end) in periods.items()
    ]
    cols.append(_count(and_(is_open, t.assignee.is_(None))).label("unassigned"))
    cols.append(_count(is_open).label("open_total"))
    cols.append(_count(sla_condition("breached")).label("sla_breached"))
    return cols


def _shape(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "received": {p: int(m[p]) for p in PERIODS},
        "unassigned": int(m["unassigned"]),
        "open_total": int(m["open_total"]),
        "sla_breached": int(m["sla_breached"]),
        "open": {},
    }


def _empty() -> dict[str, Any]:
    return {
        "received": dict.fromkeys(PERIODS, 0),
        "unassigned": 0,
        "open_total": 0,
        "sla_breached": 0,
        "open": {},
    }


def ticket_stats(
    conn: Connection, now: datetime, tz: ZoneInfo | None = None, queues: tuple[str, ...] = ()
) -> dict[str, Any]:
    """{"total": figures, "queues": {queue: figures}}; `queues` are listed even when empty."""
    periods = period_starts(now, tz)
    t, tq = tickets.c, ticket_queues.c
    total = _shape(conn.execute(select(*_figures(periods)).select_from(tickets)).one())
    visible = tickets.join(ticket_queues, tq.ticket_id == t.id)
    per_queue = {
        row.queue: _shape(row)
        for row in conn.execute(
            select(tq.queue, *_figures(periods)).select_from(visible).group_by(tq.queue)
        )
    }
    for name in queues:
        per_queue.setdefault(name, _empty())
    open_rows = select(t.status, func.count()).where(t.status.in_(OPEN_STATUSES))
    for status, n in conn.execute(open_rows.group_by(t.status)):
        total["open"][status] = int(n)
    by_queue = (
        select(tq.queue, t.status, func.count())
        .select_from(visible)
        .where(t.status.in_(OPEN_STATUSES))
        .group_by(tq.queue, t.status)
    )
    for queue, status, n in conn.execute(by_queue):
        per_queue[queue]["open"][status] = int(n)
    return {
        "at": now.isoformat(),
        "timezone": str(tz or "UTC"),
        "periods": {p: [s.isoformat(), e.isoformat()] for p, (s, e) in periods.items()},
        "total": total,
        "queues": dict(sorted(per_queue.items())),
    }
