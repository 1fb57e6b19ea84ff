"""What the sweeps share: the tables, the status groups, the policies, the SQL helpers.

Each `sweep_x(conn, config, now) -> int` (one module per sweep in this package) runs in
the caller's transaction and returns how many tickets it changed. Per-ticket business-time
questions become instants computed once per queue (calendar.thresholds), so a sweep is a
handful of statements whatever the number of tickets. A state change is a conditional
UPDATE whose WHERE no longer matches once it ran (a second run, or a second daemon,
changes nothing); the tickets it returns are the only ones that get mail, and every mail
has a Message-ID derived from its cause, so the outbox refuses a duplicate. Python touches
one ticket at a time only for tickets that changed (to render their mail, mails.py) and
for clocks that resume after a pause (track.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, case, literal_column, select, update
from sqlalchemy.sql.dml import Update

from mailgate.config.model import Config, Queue
from mailgate.config.sla import SlaSettings
from mailgate.db.models import TicketSla, UtcDateTime
from mailgate.scheduler.calendar import BusinessCalendar
from mailgate.store.tickets import tickets

ticket_sla: Table = TicketSla.__table__  # type: ignore[assignment]

RUNNING = ("new", "open", "reopened")  # waiting on us: the SLA clocks run
PAUSED = ("answered", "on-hold", "resolved", "closed")  # the clocks stand still
REMINDED = ("new", "open", "reopened", "on-hold")
WORKED = ("open", "reopened", "on-hold")
CHUNK = 500
# at most this many tickets get mail per statement and run: a catch-up after days of
# downtime becomes several short transactions (run_all_sweeps repeats), not one long lock
BATCH = 500
NO_GROWTH = 98  # steps_done of a ticket that grows no more (capped, or not waiting)
ACTOR = "mailgate"  # the actor of the sweeps' audit events


@dataclass(frozen=True)
class Policy:
    """One queue with an enabled `[sla]` table."""

    queue: Queue
    sla: SlaSettings
    calendar: BusinessCalendar


def policies(config: Config) -> dict[str, Policy]:
    """queue name -> policy of every queue whose `[sla]` is present and enabled."""
    out = {}
    for queue in config.queues:
        s = queue.sla
        if s is not None and s.enabled:
            out[queue.name] = Policy(queue, s, BusinessCalendar.of(s))
    return out


def int_sql(value: int) -> ColumnElement[int]:
    """An integer written into the SQL text, not bound as a parameter."""
    return literal_column(str(int(value)))


def utc_param(name: str) -> Any:
    return bindparam(name, type_=UtcDateTime())


def sla_of_ticket() -> ColumnElement[bool]:
    return ticket_sla.c.ticket_id == tickets.c.id


Pick = Callable[[Any], list[ColumnElement[bool]]]  # conditions on ticket_sla (the mirror)
Live = Callable[[Any, Any], list[ColumnElement[bool]]]  # conditions on (ticket_sla, tickets)


def capped_sla_update(pick: Pick, live: Live) -> Update:
    """UPDATE ticket_sla ... FROM tickets for at most BATCH rows.

    Candidates come from the mirror (`pick`, on the indexed ticket_sla alone); the outer
    WHERE repeats them and checks the live ticket (`live`) for those candidates only. On
    PostgreSQL a concurrent sweep that waited for our row locks re-checks the outer WHERE
    on the new row versions and skips what we changed.
    """
    sa = ticket_sla.alias("sla_pick")
    chosen = select(sa.c.ticket_id).where(*pick(sa.c)).limit(BATCH)
    s, t = ticket_sla.c, tickets.c
    return update(ticket_sla).where(sla_of_ticket(), *pick(s), *live(s, t), s.ticket_id.in_(chosen))


def capped_ticket_update(pick: Pick, live: Callable[[Any], list[ColumnElement[bool]]]) -> Update:
    """UPDATE tickets for at most BATCH tickets (see capped_sla_update)."""
    sa = ticket_sla.alias("sla_pick")
    chosen = select(sa.c.ticket_id).where(*pick(sa.c)).limit(BATCH)
    return update(tickets).where(*live(tickets.c), tickets.c.id.in_(chosen))


def steps_expr(start: ColumnElement[datetime], growth: Sequence[Any]) -> ColumnElement[int]:
    """How many steps a ticket has grown: the number of k with start <= growth[k-1]
    (growth is descending), as a balanced CASE tree: about 7 comparisons per row."""

    def build(lo: int, hi: int) -> ColumnElement[int]:
        if lo == hi:
            return int_sql(lo)
        mid = (lo + hi + 1) // 2
        return case((start <= growth[mid - 1], build(mid, hi)), else_=build(lo, mid - 1))

    return build(0, len(growth))


def curve_expr(growth: Sequence[Any]) -> ColumnElement[int]:
    """min(99, base + steps) (a base above 99, set by hand, is kept)."""
    base = ticket_sla.c.base_priority
    grown = base + steps_expr(ticket_sla.c.grow_from, growth)
    return case((base >= 99, base), (grown > 99, int_sql(99)), else_=grown)
