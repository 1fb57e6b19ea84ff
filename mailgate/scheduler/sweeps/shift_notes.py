"""The shift-notes sweep: at the end of a shift, tickets worked on during it that got no
internal note remind their assignee."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, exists, or_

from mailgate.config.model import Config
from mailgate.scheduler.sweeps.reminders import remind
from mailgate.scheduler.sweeps.sql import WORKED, Policy, capped_sla_update, policies, ticket_sla
from mailgate.store.articles import articles


def sweep_shift_notes(conn: Connection, config: Config, now: datetime) -> int:
    """At the end of a shift, flag tickets worked on during it that got no internal note."""
    with_shifts = [p for p in policies(config).values() if p.sla.shift_ends]
    return sum(_flag_shift(conn, config, p, now) for p in with_shifts)


def _flag_shift(conn: Connection, config: Config, pol: Policy, now: datetime) -> int:
    end, start = pol.calendar.shift_ends(now, pol.sla.shift_minutes())
    q, a = pol.queue.name, articles.c

    def worked(queue: Any, status: Any, assignee: Any, updated: Any) -> list[ColumnElement[bool]]:
        """Assigned, and worked on during the shift that just ended."""
        worked_then = [updated > start, updated <= end]
        return [queue == q, status.in_(WORKED), assignee.is_not(None), *worked_then]

    def unnoted(s: Any) -> list[ColumnElement[bool]]:
        noted = exists().where(a.ticket_id == s.ticket_id, a.kind == "note", a.created_at > start)
        return [
            *worked(s.m_queue, s.m_status, s.m_assignee, s.m_updated_at),
            or_(s.shift_flagged_at.is_(None), s.shift_flagged_at < end),
            ~noted,
        ]

    def live(s: Any, t: Any) -> list[ColumnElement[bool]]:
        return worked(t.queue, t.status, t.assignee, t.updated_at)

    stmt = capped_sla_update(unnoted, live).values(shift_flagged_at=end)
    ids = conn.execute(stmt.returning(ticket_sla.c.ticket_id)).scalars().all()
    return remind(conn, config, pol, ids, now, reason="shift_notes", shift_end=end)
