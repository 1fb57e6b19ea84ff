"""The priority sweep: a ticket waiting for an answer grows in priority per business hour.

The curve is min(99, base + floor(rate x business hours waited)); see docs/scheduler.md.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, or_, select, update
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import Update

from mailgate.config.model import Config
from mailgate.scheduler.calendar import Thresholds, thresholds
from mailgate.scheduler.sweeps.sql import (
    NO_GROWTH,
    RUNNING,
    Policy,
    curve_expr,
    int_sql,
    policies,
    steps_expr,
    ticket_sla,
    utc_param,
)
from mailgate.store.tickets import tickets


def sweep_priority(conn: Connection, config: Config, now: datetime) -> int:
    """Grow the priority of tickets waiting for an answer, per business hour waited."""
    growing = [p for p in policies(config).values() if p.sla.priority_growth_per_hour > 0]
    return sum(_grow(conn, p, thresholds(p.sla, p.calendar, now)) for p in growing)


def _grow(conn: Connection, pol: Policy, th: Thresholds) -> int:
    due, remember = _growth_statements(len(th.growth))
    params: dict[str, Any] = {"q": pol.queue.name}
    params.update((f"g{k}", at) for k, at in enumerate(th.growth))
    rows = conn.execute(due, params).all()
    grown = 0
    if rows:
        grown = conn.execute(
            _SET_PRIORITY, [{"b_id": i, "b_old": o, "b_new": n} for i, o, n in rows]
        ).rowcount
    # remember what we wrote (a priority set by hand differs: sweep_track) and the steps
    conn.execute(remember, params)
    return max(grown, 0)


# the live checks: still waiting, and nobody changed the priority since the sync
_SET_PRIORITY = (
    update(tickets)
    .where(tickets.c.id == bindparam("b_id"), tickets.c.priority == bindparam("b_old"))
    .where(or_(*[tickets.c.status == st for st in RUNNING]))  # not IN: executemany
    .where(tickets.c.last_customer_at.is_not(None))
    .where(
        or_(
            tickets.c.last_answer_at.is_(None),
            tickets.c.last_answer_at < tickets.c.last_customer_at,
        )
    )
    .values(priority=bindparam("b_new"))
)


@lru_cache(maxsize=4)
def _growth_statements(steps: int) -> tuple[Select[Any], Update]:
    """Built once: the curve is a few hundred nodes, too many to build on every sweep.

    Only rows that reached their next step are looked at: for each k one index range
    (steps_done = k, grow_from <= the instant of step k+1), about a hundred short probes.
    Running means not paused; a running ticket that is not waiting has steps_done 98."""
    s = ticket_sla.c
    at = [utc_param(f"g{k}") for k in range(steps)]
    q = bindparam("q")
    reached = or_(
        *[
            and_(s.m_queue == q, s.paused_since.is_(None), s.steps_done == k, s.grow_from <= at[k])
            for k in range(steps)
        ]
    )
    # still waiting as last seen (no index on these: the probes above stay the plan)
    waiting = and_(
        s.m_customer_at.is_not(None),
        or_(s.m_answer_at.is_(None), s.m_answer_at < s.m_customer_at),
    )
    curve = curve_expr(at)
    taken = steps_expr(s.grow_from, at)
    capped = or_(s.base_priority >= 99, s.base_priority + taken >= 99)
    due = select(s.ticket_id, s.set_priority, curve).where(reached, waiting)
    due = due.where(s.set_priority != curve)
    remember = (
        update(ticket_sla)
        .where(reached, waiting)
        .values(set_priority=curve, steps_done=case((capped, int_sql(NO_GROWTH)), else_=taken))
    )
    return due, remember
