"""The reminders sweep: escalated tickets nobody updated for `update_hours` remind their
agents, again every `update_hours` until someone does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, or_

from mailgate.agents.access import escalation_recipients
from mailgate.config.model import Config
from mailgate.scheduler.sweeps.mails import mail_facts, queue_mails, reminder_mails
from mailgate.scheduler.sweeps.sql import (
    ACTOR,
    REMINDED,
    Policy,
    capped_sla_update,
    policies,
    ticket_sla,
)
from mailgate.store.audit import audit


def sweep_reminders(conn: Connection, config: Config, now: datetime) -> int:
    """Escalated tickets nobody touched for `update_hours`: remind the assignee (or the
    tier's agents), again every `update_hours` until someone does."""
    reminding = [p for p in policies(config).values() if p.sla.update_hours > 0]
    return sum(_remind_quiet(conn, config, p, now) for p in reminding)


def _remind_quiet(conn: Connection, config: Config, pol: Policy, now: datetime) -> int:
    hours = pol.sla.update_hours
    cut = now - timedelta(hours=hours)
    q = pol.queue.name

    def quiet(s: Any) -> list[ColumnElement[bool]]:
        return [
            s.m_queue == q,
            s.tier_seen.in_(("L2", "L3")),
            s.m_status.in_(REMINDED),
            s.m_updated_at <= cut,
            s.tier_start <= cut,
            or_(s.reminded_at.is_(None), s.reminded_at <= cut),
        ]

    def live(s: Any, t: Any) -> list[ColumnElement[bool]]:
        return [t.queue == q, t.status.in_(REMINDED), t.tier != "L1", t.updated_at <= cut]

    stmt = capped_sla_update(quiet, live).values(reminded_at=now)
    ids = conn.execute(stmt.returning(ticket_sla.c.ticket_id)).scalars().all()
    return remind(conn, config, pol, ids, now, reason="update", every=hours)


def remind(
    conn: Connection,
    config: Config,
    pol: Policy,
    ids: Sequence[int],
    now: datetime,
    *,
    reason: str,
    every: float = 0.0,
    shift_end: datetime | None = None,
) -> int:
    """Remind the assignee of each ticket, or its tier's agents when nobody has it; audit it."""
    facts = mail_facts(conn, ids)
    for tid in ids:
        f = facts[tid]
        owner = config.agent(f.assignee) if f.assignee else None
        agents = [owner] if owner else escalation_recipients(config.agents, f.queue, f.tier)
        if reason == "update":
            n = int((now - f.updated_at) / timedelta(hours=every))
            cause: tuple[object, ...] = (reason, f.updated_at.isoformat(), n)
        else:
            cause = (reason, shift_end.isoformat() if shift_end else "")
        action = "reminded" if reason == "update" else "notes_missing"
        audit(conn, tid, ACTOR, action, now, agents=[a.name for a in agents])
        outs = reminder_mails(
            config, pol, f, agents, reason=reason, cause=cause, shift_end=shift_end, now=now
        )
        queue_mails(conn, config, outs, now)
    return len(ids)
