"""The scheduler's sweeps: set-based SQL over every open ticket, idempotent, clock-driven.

Each `sweep_x(conn, config, now) -> int` runs in the caller's transaction and returns how
many tickets it changed. Per-ticket business-time questions become instants computed once
per queue (sla.thresholds), so a sweep is a handful of statements whatever the number of
tickets. A state change is a conditional UPDATE whose WHERE no longer matches once it ran
(a second run, or a second daemon, changes nothing); the tickets it returns are the only
ones that get mail, and every mail has a Message-ID derived from its cause, so the outbox
refuses a duplicate. Python touches one ticket at a time only for tickets that changed
(to render their mail) and for clocks that resume after a pause.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import Update

from mailgate.agents import tokens
from mailgate.agents.access import TIER_NAMES, escalation_recipients, next_tier, team_leads
from mailgate.autoresponse.render import TemplateError, render
from mailgate.config.model import Config, Queue
from mailgate.config.schema import Agent
from mailgate.config.sla import SlaSettings
from mailgate.db.models import OPEN_STATUSES, TicketSla, UtcDateTime
from mailgate.outgoing.compose import Outgoing, compose, reply_subject, stable_message_id
from mailgate.runtime import chunks
from mailgate.scheduler.sla import (
    CLASSES,
    BusinessCalendar,
    Thresholds,
    describe_minutes,
    thresholds,
)
from mailgate.store import tickets as store

log = logging.getLogger(__name__)

tickets = store.tickets
articles = store.articles
ticket_sla: Table = TicketSla.__table__  # type: ignore[assignment]

RUNNING = ("new", "open", "reopened")  # waiting on us: the SLA clocks run
PAUSED = ("answered", "on-hold", "resolved", "closed")  # the clocks stand still
REMINDED = ("new", "open", "reopened", "on-hold")
WORKED = ("open", "reopened", "on-hold")
CHUNK = 500
# at most this many tickets get mail per statement and run: a catch-up after days of
# downtime becomes several short transactions (run_all_sweeps repeats), not one long lock
BATCH = 500
# the sync reads tickets changed since the newest change it saw, less this (late commits)
SYNC_SLACK = timedelta(minutes=10)
NO_GROWTH = 98  # steps_done of a ticket that grows no more (capped, or not waiting)
ACTOR = "mailgate"


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


def _at(value: datetime) -> ColumnElement[datetime]:
    return literal(value, UtcDateTime())


def _int(value: int) -> ColumnElement[int]:
    return literal_column(str(int(value)))


def _joined() -> ColumnElement[bool]:
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
    return update(ticket_sla).where(_joined(), *pick(s), *live(s, t), s.ticket_id.in_(chosen))


def capped_ticket_update(pick: Pick, live: Callable[[Any], list[ColumnElement[bool]]]) -> Update:
    """UPDATE tickets for at most BATCH tickets (see capped_sla_update)."""
    sa = ticket_sla.alias("sla_pick")
    chosen = select(sa.c.ticket_id).where(*pick(sa.c)).limit(BATCH)
    return update(tickets).where(*live(tickets.c), tickets.c.id.in_(chosen))


def _waiting_live(t: Any) -> ColumnElement[bool]:
    """Waiting for an answer: a customer wrote after the last answer, and it is on us."""
    return and_(
        t.status.in_(RUNNING),
        t.last_customer_at.is_not(None),
        or_(t.last_answer_at.is_(None), t.last_answer_at < t.last_customer_at),
    )


# -- bookkeeping ---------------------------------------------------------------------------
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
    return case((not_waiting, _int(NO_GROWTH)), else_=_int(0))


def _add_and_wake(conn: Connection) -> tuple[int, list[int]]:
    """Open tickets without a row get one; rows of reopened tickets take part again (their
    ids are returned, for a sync). Finding them reads only the status index of tickets."""
    t, s = tickets.c, ticket_sla.c
    found = conn.execute(
        select(t.id, s.ticket_id)
        .select_from(tickets.outerjoin(ticket_sla, _joined()))
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
    at = _at(now)
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
        .where(_joined(), scope, changed)
        .values(
            **mirror,
            class_priority=case((by_hand, t.priority), else_=s.class_priority),
            base_priority=case((or_(by_hand, new_wait), t.priority), else_=s.base_priority),
            # a ticket that is on us but not waiting for an answer grows no more (98)
            steps_done=case(
                (or_(by_hand, new_wait), _int(0)),
                (and_(t.status.in_(RUNNING), ~_waiting_live(t)), _int(NO_GROWTH)),
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


def _when(name: str) -> Any:
    return bindparam(name, type_=UtcDateTime())


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
        .where(s.ticket_id == bindparam("b_id"), s.paused_since == _when("b_old"))
        .values(
            paused_since=None,
            resp_start=_when("b_resp"),
            res_start=_when("b_res"),
            tier_start=_when("b_tier"),
            grow_from=_when("b_grow"),
        )
    )
    conn.execute(stmt, params)
    return len(params)


# -- priority growth -----------------------------------------------------------------------
def steps_expr(start: ColumnElement[datetime], growth: Sequence[Any]) -> ColumnElement[int]:
    """How many steps a ticket has grown: the number of k with start <= growth[k-1]
    (growth is descending), as a balanced CASE tree: about 7 comparisons per row."""

    def build(lo: int, hi: int) -> ColumnElement[int]:
        if lo == hi:
            return _int(lo)
        mid = (lo + hi + 1) // 2
        return case((start <= growth[mid - 1], build(mid, hi)), else_=build(lo, mid - 1))

    return build(0, len(growth))


def curve_expr(growth: Sequence[Any]) -> ColumnElement[int]:
    """min(99, base + steps) (a base above 99, set by hand, is kept)."""
    base = ticket_sla.c.base_priority
    grown = base + steps_expr(ticket_sla.c.grow_from, growth)
    return case((base >= 99, base), (grown > 99, _int(99)), else_=grown)


def sweep_priority(conn: Connection, config: Config, now: datetime) -> int:
    """Grow the priority of tickets waiting for an answer, per business hour waited."""
    changed = 0
    for pol in policies(config).values():
        if pol.sla.priority_growth_per_hour > 0:
            changed += _grow(conn, pol, thresholds(pol.sla, pol.calendar, now))
    return changed


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
    at = [_when(f"g{k}") for k in range(steps)]
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
        .values(set_priority=curve, steps_done=case((capped, _int(NO_GROWTH)), else_=taken))
    )
    return due, remember


# -- mail ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MailFacts:
    """What a mail about a ticket needs to say and where it threads."""

    id: int
    title: str
    requester_addr: str
    requester_name: str
    queue: str
    priority: int
    tier: str
    assignee: str | None
    updated_at: datetime
    last_answer_at: datetime | None
    first_mid: str
    last_mid: str


def mail_facts(conn: Connection, ids: Iterable[int]) -> dict[int, MailFacts]:
    t, a = tickets.c, articles.c
    out: dict[int, MailFacts] = {}
    for chunk in chunks(sorted(set(ids)), CHUNK):
        bounds = conn.execute(
            select(a.ticket_id, func.min(a.id), func.max(a.id))
            .where(a.ticket_id.in_(chunk), a.message_id != "")
            .group_by(a.ticket_id)
        ).all()
        wanted = {i for _, lo, hi in bounds for i in (lo, hi)}
        mids = dict(
            conn.execute(select(a.id, a.message_id).where(a.id.in_(wanted))).all() if wanted else []
        )
        thread = {tid: (mids[lo], mids[hi]) for tid, lo, hi in bounds}
        for r in conn.execute(select(tickets).where(t.id.in_(chunk))):
            first, last = thread.get(r.id, ("", ""))
            out[r.id] = MailFacts(
                r.id,
                r.title,
                r.requester_addr,
                r.requester_name,
                r.queue,
                r.priority,
                r.tier,
                r.assignee,
                r.updated_at,
                r.last_answer_at,
                first,
                last,
            )
    return out


def _local_text(when: datetime, cal: BusinessCalendar | None) -> str:
    local = when.astimezone(cal.tz) if cal else when
    return local.strftime("%Y-%m-%d %H:%M %Z")


def _context(config: Config, queue: Queue, f: MailFacts, **extra: Any) -> dict[str, Any]:
    tag = queue.tag_for(f.id)
    return {
        "ticket_id": f.id,
        "ticket_ref": tag.strip("[]"),
        "tag": tag,
        "title": f.title,
        "requester": f.requester_addr,
        "requester_name": f.requester_name,
        "queue_name": queue.from_name,
        "queue_address": queue.address,
        "priority": f.priority,
        "tier": f.tier,
        "tier_name": TIER_NAMES.get(f.tier, f.tier),
        "hostname": config.main.hostname,
        **extra,
    }


def _mail(
    config: Config,
    queue: Queue,
    f: MailFacts,
    *,
    kind: str,
    to: tuple[str, str],
    subject: str,
    template: str,
    context: dict[str, Any],
    cause: tuple[object, ...],
    now: datetime,
    reply_to: str = "",
) -> Outgoing:
    body = render(config.templates_dir, queue.name, template, context)
    mid = stable_message_id(config.main.hostname, kind, f.id, *cause)
    refs = tuple(dict.fromkeys(m for m in (f.first_mid, f.last_mid) if m))
    raw = compose(
        from_addr=queue.address,
        from_name=queue.from_name,
        to=(to,),
        subject=subject,
        body=body,
        message_id=mid,
        date=now,
        hostname=config.main.hostname,
        in_reply_to=f.last_mid,
        references=refs,
        reply_to=reply_to,
        auto_submitted="auto-generated",
    )
    return Outgoing(kind, "", (to[1],), mid, raw, f.id)


def _agent_mail(
    config: Config,
    queue: Queue,
    f: MailFacts,
    agent: Agent,
    *,
    kind: str,
    subject: str,
    template: str,
    context: dict[str, Any],
    cause: tuple[object, ...],
    now: datetime,
) -> Outgoing:
    """Mail to an agent: its Reply-To carries the agent's token for this ticket, so a reply
    with command tags is authenticated like any other agent reply (tokens.py)."""
    reply = tokens.reply_address(config.secret, agent.name, f.id, queue.address)
    return _mail(
        config,
        queue,
        f,
        kind=kind,
        to=(agent.full_name, agent.address),
        subject=subject,
        template=template,
        context={**context, "agent_name": agent.full_name or agent.name, "reply_address": reply},
        cause=(*cause, agent.name),
        now=now,
        reply_to=reply,
    )


def _queue_mail(conn: Connection, config: Config, out: Outgoing, now: datetime) -> bool:
    deadline = now + timedelta(hours=config.relay.give_up_after_hours)
    return store.add_outbox(conn, out, now, deadline)


def _unique(agents: Iterable[Agent]) -> list[Agent]:
    return list({a.name: a for a in agents}.values())


# -- SLA escalation ------------------------------------------------------------------------
@dataclass(frozen=True)
class Escalation:
    """One ticket that used up a target in this sweep."""

    ticket_id: int
    from_tier: str
    to_tier: str  # the same as from_tier when the top tier used its budget
    cause: str  # first_response | resolution | tier
    key: str  # what makes this escalation unique for the ticket (Message-IDs)
    reason: str


def _class_of(column: ColumnElement[int], s: SlaSettings, cls: str) -> ColumnElement[bool]:
    lo, hi = s.classes.ranges()[cls]
    parts = []
    if lo is not None:
        parts.append(column >= lo)
    if hi is not None:
        parts.append(column <= hi)
    return and_(*parts)


def _breached(
    s: SlaSettings,
    class_priority: ColumnElement[int],
    start: ColumnElement[datetime],
    limits: dict[str, datetime],
) -> ColumnElement[bool]:
    """The clock started at or before its class's threshold: the target is used up."""
    terms = [
        and_(_class_of(class_priority, s, cls), start <= limits[cls])
        for cls in CLASSES
        if cls in limits
    ]
    if not terms:
        return false()
    # the latest threshold bounds an index range scan; the classes are checked in it
    return and_(start <= max(limits.values()), or_(*terms))


def _mark_class_breaches(
    conn: Connection, pol: Policy, th: Thresholds, now: datetime
) -> list[Escalation]:
    """First-response and resolution targets: the clocks of Tier 1."""
    q, sla = pol.queue.name, pol.sla

    def tier1(s: Any) -> list[ColumnElement[bool]]:
        return [
            s.m_queue == q,
            s.m_status.in_(RUNNING),
            s.tier_seen == "L1",
            s.paused_since.is_(None),
        ]

    def first_response(s: Any) -> list[ColumnElement[bool]]:
        return [
            *tier1(s),
            s.m_first_response_at.is_(None),
            s.fr_breached_at.is_(None),
            _breached(sla, s.class_priority, s.resp_start, th.first_response),
        ]

    def resolution(s: Any) -> list[ColumnElement[bool]]:
        return [
            *tier1(s),
            s.res_breached_at.is_(None),
            _breached(sla, s.class_priority, s.res_start, th.resolution),
        ]

    def live(s: Any, t: Any) -> list[ColumnElement[bool]]:
        return [t.queue == q, t.status.in_(RUNNING), t.tier == "L1"]

    def live_unanswered(s: Any, t: Any) -> list[ColumnElement[bool]]:
        return [*live(s, t), t.first_response_at.is_(None)]

    s = ticket_sla.c
    fr = conn.execute(
        capped_sla_update(first_response, live_unanswered)
        .values(fr_breached_at=now)
        .returning(s.ticket_id, s.class_priority)
    ).all()
    res = conn.execute(
        capped_sla_update(resolution, live)
        .values(res_breached_at=now)
        .returning(s.ticket_id, s.class_priority)
    ).all()
    found: dict[int, Escalation] = {}
    for rows, cause, targets in (
        (res, "resolution", sla.resolution),
        (fr, "first_response", sla.first_response),
    ):
        for tid, prio in rows:
            cls = sla.classes.class_of(prio)
            minutes = getattr(targets, cls)
            what = cause.replace("_", " ")
            reason = f"{what} target of {describe_minutes(minutes)} ({cls} priority) missed"
            found[tid] = Escalation(tid, "L1", "L2", cause, cause, reason)
    return list(found.values())


def _mark_tier_breaches(
    conn: Connection, pol: Policy, th: Thresholds, now: datetime
) -> list[Escalation]:
    """Tier budgets: Tier 2 has `tiers.L2` minutes before Tier 3 takes over, and so on."""
    if not th.tiers:
        return []
    q = pol.queue.name

    def live(s: Any, t: Any) -> list[ColumnElement[bool]]:
        return [t.queue == q, t.status.in_(RUNNING), t.tier == s.tier_seen]

    s = ticket_sla.c
    rows: list[Any] = []
    for tier, at in th.tiers.items():

        def used(s: Any, tier: str = tier, at: datetime = at) -> list[ColumnElement[bool]]:
            return [
                s.m_queue == q,
                s.paused_since.is_(None),
                s.tier_seen == tier,
                s.tier_breached_at.is_(None),
                s.tier_start <= at,
                s.m_status.in_(RUNNING),
            ]

        rows += conn.execute(
            capped_sla_update(used, live)
            .values(tier_breached_at=now)
            .returning(s.ticket_id, s.tier_seen, s.tier_start)
        ).all()
    out = []
    for tid, tier, start in rows:
        budget = describe_minutes(getattr(pol.sla.tiers, tier))
        reason = f"{TIER_NAMES[tier]} did not resolve it within {budget}"
        key = f"tier:{tier}:{start.isoformat()}"
        out.append(Escalation(tid, tier, next_tier(tier) or tier, "tier", key, reason))
    return out


def _raise_tiers(
    conn: Connection, pol: Policy, events: list[Escalation], now: datetime
) -> list[Escalation]:
    """Move each ticket one tier up (or into the escalation queue); keep those that moved."""
    target = pol.sla.escalate_queue
    moved: list[Escalation] = []
    for from_tier in ("L1", "L2"):
        group = [e for e in events if e.from_tier == from_tier and e.to_tier != from_tier]
        to_tier = next_tier(from_tier) or from_tier
        # updated_at is left alone: it tells when a person last worked on the ticket
        values: dict[str, Any] = {"tier": to_tier}
        mirror: dict[str, Any] = {"tier_seen": to_tier, "tier_start": now, "tier_breached_at": None}
        if target:
            values["queue"] = mirror["m_queue"] = target
        for chunk in chunks([e.ticket_id for e in group], CHUNK):
            done = set(
                conn.execute(
                    update(tickets)
                    .where(tickets.c.id.in_(chunk), tickets.c.tier == from_tier)
                    .values(**values)
                    .returning(tickets.c.id)
                ).scalars()
            )
            if not done:
                continue
            conn.execute(
                update(ticket_sla).where(ticket_sla.c.ticket_id.in_(done)).values(**mirror)
            )
            if target:
                store.insert_ignore(
                    conn, store.ticket_queues, [{"ticket_id": i, "queue": target} for i in done]
                )
            moved += [e for e in group if e.ticket_id in done]
    return moved + [e for e in events if e.to_tier == e.from_tier]


def sweep_sla(conn: Connection, config: Config, now: datetime) -> int:
    """Escalate tickets whose tier used up its target; tell agents, leads and customer."""
    changed = 0
    for pol in policies(config).values():
        th = thresholds(pol.sla, pol.calendar, now)
        with conn.begin_nested() as sp:
            try:
                events = _mark_class_breaches(conn, pol, th, now)
                events += _mark_tier_breaches(conn, pol, th, now)
                events = _raise_tiers(conn, pol, events, now)
                _announce_escalations(conn, config, pol, events, now)
            except TemplateError as e:
                log.error("sla sweep of queue %s rolled back: %s", pol.queue.name, e)
                sp.rollback()
                continue
        changed += len(events)
    return changed


def _announce_escalations(
    conn: Connection, config: Config, pol: Policy, events: list[Escalation], now: datetime
) -> None:
    facts = mail_facts(conn, [e.ticket_id for e in events])
    for e in events:
        f = facts[e.ticket_id]
        action = "escalated" if e.to_tier != e.from_tier else "sla_breach"
        store.audit(
            conn,
            e.ticket_id,
            ACTOR,
            action,
            now,
            from_tier=e.from_tier,
            to_tier=e.to_tier,
            cause=e.cause,
            reason=e.reason,
            queue=f.queue,
        )
        log.info("ticket #%d: %s %s->%s: %s", e.ticket_id, action, e.from_tier, e.to_tier, e.reason)
        _mail_agents_about(conn, config, pol, f, e, now)
        if e.to_tier != e.from_tier and pol.sla.notify_customer and f.requester_addr:
            _mail_customer_about(conn, config, pol, f, e, now)


def _expect_by(pol: Policy, now: datetime) -> datetime:
    hours = pol.sla.update_hours or 24.0
    return now + timedelta(hours=hours)


def _mail_customer_about(
    conn: Connection, config: Config, pol: Policy, f: MailFacts, e: Escalation, now: datetime
) -> None:
    queue = pol.queue  # the queue the customer wrote to, even if the ticket moved on
    ctx = _context(
        config,
        queue,
        f,
        tier=e.to_tier,
        tier_name=TIER_NAMES[e.to_tier],
        reason=e.reason,
        expect_by=_local_text(_expect_by(pol, now), pol.calendar),
    )
    out = _mail(
        config,
        queue,
        f,
        kind="escalated",
        to=(f.requester_name, f.requester_addr),
        subject=reply_subject(f.title, queue.tag_for(f.id)),
        template="escalated.txt",
        context=ctx,
        cause=(e.key,),
        now=now,
    )
    _queue_mail(conn, config, out, now)


def _mail_agents_about(
    conn: Connection, config: Config, pol: Policy, f: MailFacts, e: Escalation, now: datetime
) -> None:
    home = config.queue(f.queue) or pol.queue
    leads = team_leads(config.agents, home.name)
    agents = _unique([*escalation_recipients(config.agents, home.name, e.to_tier), *leads])
    if not agents:
        log.warning(
            "ticket #%d escalated to %s: no agent of queue %s to tell", f.id, e.to_tier, home.name
        )
    budget = getattr(pol.sla.tiers, e.to_tier, 0) if e.to_tier != "L1" else 0
    due = _local_text(pol.calendar.add(now, budget * 60), pol.calendar) if budget else ""
    verb = "Escalated to" if e.to_tier != e.from_tier else "Still unresolved at"
    subject = f"{home.tag_for(f.id)} {verb} {TIER_NAMES[e.to_tier]}: {f.title}"
    for agent in agents:
        ctx = _context(
            config,
            home,
            f,
            team_lead=agent in leads,
            from_tier=e.from_tier,
            from_tier_name=TIER_NAMES[e.from_tier],
            tier=e.to_tier,
            tier_name=TIER_NAMES[e.to_tier],
            reason=e.reason,
            due=due,
            priority_class=pol.sla.classes.class_of(f.priority),
        )
        out = _agent_mail(
            config,
            home,
            f,
            agent,
            kind="escalation",
            subject=subject,
            template="escalation_agent.txt",
            context=ctx,
            cause=(e.key,),
            now=now,
        )
        _queue_mail(conn, config, out, now)


# -- reminders -----------------------------------------------------------------------------
def sweep_reminders(conn: Connection, config: Config, now: datetime) -> int:
    """Escalated tickets nobody touched for `update_hours`: remind the assignee (or the
    tier's agents), again every `update_hours` until someone does."""
    changed = 0
    for pol in policies(config).values():
        if pol.sla.update_hours > 0:
            changed += _remind_quiet(conn, config, pol, now)
    return changed


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
    return _remind(conn, config, pol, ids, now, reason="update", every=hours)


def sweep_shift_notes(conn: Connection, config: Config, now: datetime) -> int:
    """At the end of a shift, flag tickets worked on during it that got no internal note."""
    changed = 0
    for pol in policies(config).values():
        if pol.sla.shift_ends:
            changed += _flag_shift(conn, config, pol, now)
    return changed


def _flag_shift(conn: Connection, config: Config, pol: Policy, now: datetime) -> int:
    end, start = pol.calendar.shift_ends(now, pol.sla.shift_minutes())
    q, a = pol.queue.name, articles.c

    def unnoted(s: Any) -> list[ColumnElement[bool]]:
        noted = exists().where(a.ticket_id == s.ticket_id, a.kind == "note", a.created_at > start)
        return [
            s.m_queue == q,
            s.m_status.in_(WORKED),
            s.m_assignee.is_not(None),
            s.m_updated_at > start,
            s.m_updated_at <= end,
            or_(s.shift_flagged_at.is_(None), s.shift_flagged_at < end),
            ~noted,
        ]

    def live(s: Any, t: Any) -> list[ColumnElement[bool]]:
        return [
            t.queue == q,
            t.status.in_(WORKED),
            t.assignee.is_not(None),
            t.updated_at > start,
            t.updated_at <= end,
        ]

    stmt = capped_sla_update(unnoted, live).values(shift_flagged_at=end)
    ids = conn.execute(stmt.returning(ticket_sla.c.ticket_id)).scalars().all()
    return _remind(conn, config, pol, ids, now, reason="shift_notes", shift_end=end)


def _remind(
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
        store.audit(conn, tid, ACTOR, action, now, agents=[a.name for a in agents])
        idle = describe_minutes((now - f.updated_at).total_seconds() / 60)
        what = "no update" if reason == "update" else "no shift notes"
        for agent in agents:
            ctx = _context(
                config,
                pol.queue,
                f,
                reason=reason,
                idle=idle,
                last_update=_local_text(f.updated_at, pol.calendar),
                shift_end=_local_text(shift_end, pol.calendar) if shift_end else "",
            )
            out = _agent_mail(
                config,
                pol.queue,
                f,
                agent,
                kind="reminder",
                subject=f"{pol.queue.tag_for(f.id)} Reminder, {what}: {f.title}",
                template="reminder.txt",
                context=ctx,
                cause=cause,
                now=now,
            )
            _queue_mail(conn, config, out, now)
    return len(ids)


# -- auto-close ----------------------------------------------------------------------------
def sweep_close(conn: Connection, config: Config, now: datetime) -> int:
    """Close answered tickets the customer left alone for `close.after_days` days."""
    changed = 0
    # the review link comes from [sla] even where the SLA itself is disabled
    links = {q.name: q.sla.review_link for q in config.queues if q.sla is not None}
    for queue in config.queues:
        days = queue.close.after_days
        if days < 0:
            continue
        with conn.begin_nested() as sp:
            try:
                changed += _close_queue(conn, config, queue, days, links.get(queue.name, ""), now)
            except TemplateError as e:
                log.error("close sweep of queue %s rolled back: %s", queue.name, e)
                sp.rollback()
    return changed


def _close_queue(
    conn: Connection, config: Config, queue: Queue, days: int, review_link: str, now: datetime
) -> int:
    cut = now - timedelta(days=days)
    q = queue.name

    def quiet(s: Any) -> list[ColumnElement[bool]]:
        when = func.coalesce(s.m_answer_at, s.m_updated_at)
        return [s.m_status == "answered", s.m_queue == q, when <= cut]

    def live(t: Any) -> list[ColumnElement[bool]]:
        when = func.coalesce(t.last_answer_at, t.updated_at)
        return [t.queue == q, t.status == "answered", when <= cut]

    t = tickets.c
    rows = conn.execute(
        capped_ticket_update(quiet, live)
        .values(status="closed", closed_at=now, updated_at=now)
        .returning(t.id, t.last_answer_at)
    ).all()
    for chunk in chunks([r.id for r in rows], CHUNK):  # the mirror follows at once
        conn.execute(
            update(ticket_sla).where(ticket_sla.c.ticket_id.in_(chunk)).values(m_status="closed")
        )
    facts = mail_facts(conn, [r.id for r in rows])
    for tid, answered in rows:
        f = facts[tid]
        store.audit(conn, tid, ACTOR, "closed", now, reason="auto-close", after_days=days)
        if not f.requester_addr:
            continue
        ctx = _context(
            config,
            queue,
            f,
            days=days,
            review_link=review_link,
            reopen_days=queue.close.reopen_window_days,
        )
        out = _mail(
            config,
            queue,
            f,
            kind="closed",
            to=(f.requester_name, f.requester_addr),
            subject=reply_subject(f.title, queue.tag_for(tid)),
            template="closed.txt",
            context=ctx,
            cause=(answered.isoformat() if answered else "",),
            now=now,
        )
        _queue_mail(conn, config, out, now)
    if rows:
        log.info("queue %s: closed %d answered ticket(s)", queue.name, len(rows))
    return len(rows)
