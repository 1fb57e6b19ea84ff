"""The track sweep: keeps `ticket_sla`, the sweeps' mirror of `tickets`, in step. Runs first.

The other sweeps pick their candidates from this mirror alone, by index; see
docs/scheduler.md ("How it stays fast") for what each column holds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    case,
    func,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mailgate.config.model import Config
from mailgate.db.models import OPEN_STATUSES, UtcDateTime
from mailgate.runtime import chunks
from mailgate.scheduler.calendar import BusinessCalendar
from mailgate.scheduler.sweeps.sql import (
    CHUNK,
    NO_GROWTH,
    PAUSED,
    RUNNING,
    Policy,
    int_sql,
    policies,
    sla_of_ticket,
    ticket_sla,
    utc_param,
)
from mailgate.store.tickets import tickets

# the sync reads tickets changed since the newest change it saw, less this (late commits)
SYNC_SLACK = timedelta(minutes=10)


def _waiting_live(t: Any) -> ColumnElement[bool]:
    """Waiting for an answer: a customer wrote after the last answer, and it is on us."""
    return and_(
        t.status.in_(RUNNING),
        t.last_customer_at.is_not(None),
        or_(t.last_answer_at.is_(None), t.last_answer_at < t.last_customer_at),
    )


def sweep_track(conn: Connection, config: Config, now: datetime, *, full: bool = False) -> int:
    """Keep ticket_sla in step with tickets: rows for new and reopened tickets, the mirror,
    hand-made priority and tier changes, pauses starting and ending. Runs first.

    Every writer bumps tickets.updated_at, so only tickets changed since the last sync (with
    some slack for late commits) are read, through their index; `full` reads every open
    ticket (at start and once an hour: a safety net for a writer that forgot)."""
    n = _sync(conn, now, _changed_scope(conn, now, full))
    if _uncovered(conn):
        added, woken = _add_and_wake(conn)
        n += added
        for chunk in chunks(woken, CHUNK):
            n += _sync(conn, now, ticket_sla.c.ticket_id.in_(chunk))
    n += _end_pauses(conn, policies(config), now)
    return n


def _changed_scope(conn: Connection, now: datetime, full: bool) -> ColumnElement[bool]:
    s, t = ticket_sla.c, tickets.c
    seen = None if full else conn.execute(select(func.max(s.m_updated_at))).scalar()
    if seen is None:
        return s.m_status.in_(OPEN_STATUSES)
    since = min(seen, now) - SYNC_SLACK
    return s.ticket_id.in_(select(t.id).where(t.updated_at >= since))


def _uncovered(conn: Connection) -> bool:
    """Are there open tickets without an active row? After a sync the active rows are a
    subset of the open tickets, so equal counts (two index-only counts) mean no."""
    t, s = tickets.c, ticket_sla.c
    open_tickets = select(func.count()).where(t.status.in_(OPEN_STATUSES)).scalar_subquery()
    active = select(func.count()).where(s.m_status.in_(OPEN_STATUSES)).scalar_subquery()
    return bool(conn.execute(select(open_tickets != active)).scalar())


_ROW_SOURCE = (
    ("ticket_id", "id"),
    ("m_queue", "queue"),
    ("m_status", "status"),
    ("m_updated_at", "updated_at"),
    ("m_customer_at", "last_customer_at"),
    ("m_answer_at", "last_answer_at"),
    ("m_first_response_at", "first_response_at"),
    ("m_assignee", "assignee"),
    ("tier_seen", "tier"),
    ("set_priority", "priority"),
    ("class_priority", "priority"),
    ("base_priority", "priority"),
    ("steps_done", None),
    ("wait_since", "last_customer_at"),
    ("grow_from", "last_customer_at"),
    ("resp_start", "created_at"),
    ("res_start", "created_at"),
    ("tier_start", "created_at"),
)


def _first_steps(t: Any) -> ColumnElement[int]:
    """steps_done of a new row: a ticket that is on us but not waiting does not grow."""
    not_waiting = and_(t.status.in_(RUNNING), ~_waiting_live(t))
    return case((not_waiting, int_sql(NO_GROWTH)), else_=int_sql(0))


def _add_and_wake(conn: Connection) -> tuple[int, list[int]]:
    """Open tickets without a row get one; rows of reopened tickets take part again (their
    ids are returned, for a sync). Finding them reads only the status index of tickets."""
    t, s = tickets.c, ticket_sla.c
    found = conn.execute(
        select(t.id, s.ticket_id)
        .select_from(tickets.outerjoin(ticket_sla, sla_of_ticket()))
        .where(t.status.in_(OPEN_STATUSES))
        .where(or_(s.ticket_id.is_(None), s.m_status.not_in(OPEN_STATUSES)))
    ).all()
    new = [tid for tid, row in found if row is None]
    dormant = [tid for tid, row in found if row is not None]
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    cols = [target for target, _ in _ROW_SOURCE] + ["paused_since"]
    for chunk in chunks(new, CHUNK):
        source = select(
            *[
                (getattr(t, col) if col else _first_steps(t)).label(f"c{i}")
                for i, (_, col) in enumerate(_ROW_SOURCE)
            ],
            case((t.status.in_(PAUSED), t.updated_at), else_=null()).label("paused"),
        ).where(t.id.in_(chunk))
        conn.execute(ins(ticket_sla).from_select(cols, source).on_conflict_do_nothing())
    for chunk in chunks(dormant, CHUNK):
        # any open status will do: the sync then copies the real one and what changed
        conn.execute(
            update(ticket_sla)
            .where(s.ticket_id.in_(chunk), s.m_status.not_in(OPEN_STATUSES))
            .values(m_status="reopened")
        )
    return len(new), dormant


def _sync(conn: Connection, now: datetime, scope: ColumnElement[bool]) -> int:
    """Copy what changed into the mirror for the rows in `scope`, and note what the change
    means: a hand-set priority (new class, growth from there), a new wait, a new tier (its
    clock starts), a pause (the clocks stop)."""
    s, t = ticket_sla.c, tickets.c
    at = literal(now, UtcDateTime())
    by_hand = s.set_priority != t.priority
    new_wait = and_(_waiting_live(t), s.wait_since.is_distinct_from(t.last_customer_at))
    new_tier = s.tier_seen != t.tier
    pausing = and_(s.paused_since.is_(None), t.status.in_(PAUSED))
    mirror = {
        "m_queue": t.queue,
        "m_status": t.status,
        "m_updated_at": t.updated_at,
        "m_customer_at": t.last_customer_at,
        "m_answer_at": t.last_answer_at,
        "m_first_response_at": t.first_response_at,
        "m_assignee": t.assignee,
        "tier_seen": t.tier,
        "set_priority": t.priority,
    }
    changed = or_(*[getattr(s, k).is_distinct_from(v) for k, v in mirror.items()])
    stmt = (
        update(ticket_sla)
        .where(sla_of_ticket(), scope, changed)
        .values(
            **mirror,
            class_priority=case((by_hand, t.priority), else_=s.class_priority),
            base_priority=case((or_(by_hand, new_wait), t.priority), else_=s.base_priority),
            # a ticket that is on us but not waiting for an answer grows no more (98)
            steps_done=case(
                (or_(by_hand, new_wait), int_sql(0)),
                (and_(t.status.in_(RUNNING), ~_waiting_live(t)), int_sql(NO_GROWTH)),
                else_=s.steps_done,
            ),
            wait_since=case((new_wait, t.last_customer_at), else_=s.wait_since),
            grow_from=case((new_wait, t.last_customer_at), (by_hand, at), else_=s.grow_from),
            tier_start=case((new_tier, at), else_=s.tier_start),
            tier_breached_at=case((new_tier, null()), else_=s.tier_breached_at),
            paused_since=case(
                (pausing, case((t.updated_at <= now, t.updated_at), else_=at)),
                else_=s.paused_since,
            ),
        )
    )
    return conn.execute(stmt).rowcount


def _resumed(
    cal: BusinessCalendar, start: datetime | None, paused: datetime, until: datetime
) -> datetime | None:
    return None if start is None else cal.shift(start, paused, until)


def _end_pauses(conn: Connection, pols: dict[str, Policy], now: datetime) -> int:
    """Clocks resume: move their starts past the pause (per resumed ticket: the business
    time before the pause is a per-ticket quantity, but only resumed tickets need it)."""
    s = ticket_sla.c
    rows = conn.execute(
        select(
            s.ticket_id,
            s.paused_since,
            s.resp_start,
            s.res_start,
            s.tier_start,
            s.grow_from,
            s.m_updated_at,
            s.m_queue,
        ).where(s.m_status.in_(RUNNING), s.paused_since.is_not(None))
    ).all()
    if not rows:
        return 0
    params = []
    for r in rows:
        until = min(max(r.m_updated_at, r.paused_since), now)
        pol = pols.get(r.m_queue)
        starts = (r.resp_start, r.res_start, r.tier_start, r.grow_from)
        if pol is not None:
            starts = tuple(_resumed(pol.calendar, x, r.paused_since, until) for x in starts)
        params.append(
            {"b_id": r.ticket_id, "b_old": r.paused_since}
            | dict(zip(("b_resp", "b_res", "b_tier", "b_grow"), starts, strict=True))
        )
    stmt = (
        update(ticket_sla)
        .where(s.ticket_id == bindparam("b_id"), s.paused_since == utc_param("b_old"))
        .values(
            paused_since=None,
            resp_start=utc_param("b_resp"),
            res_start=utc_param("b_res"),
            tier_start=utc_param("b_tier"),
            grow_from=utc_param("b_grow"),
        )
    )
    conn.execute(stmt, params)
    return len(params)
