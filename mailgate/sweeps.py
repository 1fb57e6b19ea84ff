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
from collections.abc import Iterable, Iterator, Sequence
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
from sqlalchemy.sql.dml import Update

from mailgate import store
from mailgate.autoresponse.render import TemplateError, render
from mailgate.compose import Outgoing, compose, reply_subject, stable_message_id
from mailgate.config import Agent, Config, Queue
from mailgate.models import OPEN_STATUSES, UtcDateTime
from mailgate.schedule_models import TicketSla
from mailgate.sla import (
    CLASSES,
    TIER_NAMES,
    BusinessCalendar,
    SlaSettings,
    Thresholds,
    describe_minutes,
    next_tier,
    sla_settings,
    thresholds,
)

log = logging.getLogger(__name__)

tickets = store.tickets
articles = store.articles
ticket_sla: Table = TicketSla.__table__  # type: ignore[assignment]

RUNNING = ("new", "open", "reopened")  # waiting on us: the SLA clocks run
PAUSED = ("answered", "on-hold", "resolved", "closed")  # the clocks stand still
REMINDED = ("new", "open", "reopened", "on-hold")
WORKED = ("open", "reopened", "on-hold")
CHUNK = 500
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
    for name, s in sla_settings(config).items():
        queue = config.queue(name)
        if s.enabled and queue is not None:
            out[name] = Policy(queue, s, s.calendar())
    return out


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield list(ids[i : i + CHUNK])


def _at(value: datetime) -> ColumnElement[datetime]:
    return literal(value, UtcDateTime())


def _int(value: int) -> ColumnElement[int]:
    return literal_column(str(int(value)))


def _joined() -> ColumnElement[bool]:
    return ticket_sla.c.ticket_id == tickets.c.id


# -- bookkeeping ---------------------------------------------------------------------------
def sweep_track(conn: Connection, config: Config, now: datetime) -> int:
    """Keep ticket_sla in step with tickets: new rows, manual priority and tier changes,
    pauses starting and ending. Runs before the other SLA sweeps."""
    pols = policies(config)
    if not pols:
        return 0
    names = list(pols)
    n = _add_rows(conn, names)
    n += _rebase_manual_priority(conn, names, now)
    n += _note_tier_changes(conn, names, now)
    n += _start_pauses(conn, names, now)
    n += _end_pauses(conn, pols, now)
    return n


def _add_rows(conn: Connection, names: list[str]) -> int:
    t = tickets.c
    source = select(
        t.id,
        t.priority.label("p1"),
        t.priority.label("p2"),
        t.priority.label("p3"),
        t.last_customer_at.label("w1"),
        t.last_customer_at.label("w2"),
        t.created_at.label("c1"),
        t.created_at.label("c2"),
        t.tier,
        t.created_at.label("c3"),
        case((t.status.in_(PAUSED), t.updated_at), else_=null()).label("paused"),
    ).where(
        t.queue.in_(names),
        t.status.in_(OPEN_STATUSES),
        ~exists().where(ticket_sla.c.ticket_id == t.id),
    )
    cols = [
        "ticket_id",
        "class_priority",
        "base_priority",
        "set_priority",
        "wait_since",
        "grow_from",
        "resp_start",
        "res_start",
        "tier_seen",
        "tier_start",
        "paused_since",
    ]
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = ins(ticket_sla).from_select(cols, source).on_conflict_do_nothing()
    return max(conn.execute(stmt).rowcount, 0)


def _rebase_manual_priority(conn: Connection, names: list[str], now: datetime) -> int:
    """An agent set the priority: it becomes the class priority and growth starts there."""
    s, t = ticket_sla.c, tickets.c
    stmt = (
        update(ticket_sla)
        .where(_joined(), t.queue.in_(names), t.status.in_(OPEN_STATUSES))
        .where(s.set_priority != t.priority)
        .values(
            class_priority=t.priority,
            base_priority=t.priority,
            set_priority=t.priority,
            grow_from=now,
        )
    )
    return conn.execute(stmt).rowcount


def _note_tier_changes(conn: Connection, names: list[str], now: datetime) -> int:
    """An agent moved the ticket to another tier: that tier's clock starts now."""
    s, t = ticket_sla.c, tickets.c
    stmt = (
        update(ticket_sla)
        .where(_joined(), t.queue.in_(names), t.status.in_(OPEN_STATUSES))
        .where(s.tier_seen != t.tier)
        .values(tier_seen=t.tier, tier_start=now, tier_breached_at=None)
    )
    return conn.execute(stmt).rowcount


def _start_pauses(conn: Connection, names: list[str], now: datetime) -> int:
    s, t = ticket_sla.c, tickets.c
    stmt = (
        update(ticket_sla)
        .where(_joined(), t.queue.in_(names), t.status.in_(PAUSED), s.paused_since.is_(None))
        .values(paused_since=case((t.updated_at <= now, t.updated_at), else_=_at(now)))
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
    s, t = ticket_sla.c, tickets.c
    rows = conn.execute(
        select(
            s.ticket_id,
            s.paused_since,
            s.resp_start,
            s.res_start,
            s.tier_start,
            s.grow_from,
            t.updated_at,
            t.queue,
        ).where(_joined(), t.status.in_(RUNNING), s.paused_since.is_not(None))
    ).all()
    if not rows:
        return 0
    params = []
    for r in rows:
        until = min(max(r.updated_at, r.paused_since), now)
        pol = pols.get(r.queue)
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
def _waiting(queue: str | ColumnElement[str]) -> ColumnElement[bool]:
    """Waiting for an answer: a customer wrote after the last answer, and it is on us."""
    t = tickets.c
    return and_(
        t.queue == queue,
        t.status.in_(RUNNING),
        t.last_customer_at.is_not(None),
        or_(t.last_answer_at.is_(None), t.last_answer_at < t.last_customer_at),
    )


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
    restart, grow, remember = _growth_statements(len(th.growth))
    params: dict[str, Any] = {"q": pol.queue.name}
    params.update((f"g{k}", at) for k, at in enumerate(th.growth))
    conn.execute(restart, params)
    grown = conn.execute(grow, params).rowcount
    conn.execute(remember, params)
    return grown


@lru_cache(maxsize=4)
def _growth_statements(steps: int) -> tuple[Update, Update, Update]:
    """Built once: the curve is a few hundred nodes, too many to build on every sweep."""
    s, t = ticket_sla.c, tickets.c
    waiting = _waiting(bindparam("q"))
    curve = curve_expr([_when(f"g{k}") for k in range(steps)])
    # a new customer message starts a new wait, growing from the priority it has now
    restart = (
        update(ticket_sla)
        .where(_joined(), waiting, s.wait_since.is_distinct_from(t.last_customer_at))
        .values(
            wait_since=t.last_customer_at, grow_from=t.last_customer_at, base_priority=t.priority
        )
    )
    grow = (
        update(tickets)
        .where(_joined(), waiting, s.paused_since.is_(None))
        .where(t.priority == s.set_priority, t.priority != curve)
        .values(priority=curve)
    )
    # remember what we wrote, so a hand-set priority can be told apart (sweep_track)
    remember = (
        update(ticket_sla)
        .where(_joined(), waiting, s.set_priority != t.priority, t.priority == curve)
        .values(set_priority=t.priority)
    )
    return restart, grow, remember


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
    for chunk in _chunks(sorted(set(ids))):
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
        auto_submitted="auto-generated",
    )
    return Outgoing(kind, "", (to[1],), mid, raw, f.id)


def _queue_mail(conn: Connection, config: Config, out: Outgoing, now: datetime) -> bool:
    deadline = now + timedelta(hours=config.relay.give_up_after_hours)
    return store.add_outbox(conn, out, now, deadline)


def tier_agents(config: Config, queue: str, tier: str) -> list[Agent]:
    return [a for a in config.agents if a.tier == tier and queue in a.queues]


def team_leads(config: Config, queue: str) -> list[Agent]:
    return [a for a in config.agents if a.team_lead and queue in a.queues]


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
    s: SlaSettings, start: ColumnElement[datetime], limits: dict[str, datetime]
) -> ColumnElement[bool]:
    """The clock started at or before its class's threshold: the target is used up."""
    terms = [
        and_(_class_of(ticket_sla.c.class_priority, s, cls), start <= limits[cls])
        for cls in CLASSES
        if cls in limits
    ]
    return or_(*terms) if terms else false()


def _mark_class_breaches(
    conn: Connection, pol: Policy, th: Thresholds, now: datetime
) -> list[Escalation]:
    """First-response and resolution targets: the clocks of Tier 1."""
    s, t = ticket_sla.c, tickets.c
    base = and_(
        _joined(),
        t.queue == pol.queue.name,
        t.status.in_(RUNNING),
        t.tier == "L1",
        s.paused_since.is_(None),
    )
    fr = conn.execute(
        update(ticket_sla)
        .where(base, t.first_response_at.is_(None), s.fr_breached_at.is_(None))
        .where(_breached(pol.sla, s.resp_start, th.first_response))
        .values(fr_breached_at=now)
        .returning(s.ticket_id, s.class_priority)
    ).all()
    res = conn.execute(
        update(ticket_sla)
        .where(base, s.res_breached_at.is_(None))
        .where(_breached(pol.sla, s.res_start, th.resolution))
        .values(res_breached_at=now)
        .returning(s.ticket_id, s.class_priority)
    ).all()
    found: dict[int, Escalation] = {}
    for rows, cause, targets in (
        (res, "resolution", pol.sla.resolution),
        (fr, "first_response", pol.sla.first_response),
    ):
        for tid, prio in rows:
            cls = pol.sla.classes.class_of(prio)
            minutes = getattr(targets, cls)
            what = cause.replace("_", " ")
            found[tid] = Escalation(
                tid,
                "L1",
                "L2",
                cause,
                cause,
                f"{what} target of {describe_minutes(minutes)} ({cls} priority) missed",
            )
    return list(found.values())


def _mark_tier_breaches(
    conn: Connection, pol: Policy, th: Thresholds, now: datetime
) -> list[Escalation]:
    """Tier budgets: Tier 2 has `tiers.L2` minutes before Tier 3 takes over, and so on."""
    if not th.tiers:
        return []
    s, t = ticket_sla.c, tickets.c
    used = or_(*[and_(s.tier_seen == tier, s.tier_start <= at) for tier, at in th.tiers.items()])
    rows = conn.execute(
        update(ticket_sla)
        .where(_joined(), t.queue == pol.queue.name, t.status.in_(RUNNING))
        .where(t.tier == s.tier_seen, s.paused_since.is_(None), s.tier_breached_at.is_(None))
        .where(used)
        .values(tier_breached_at=now)
        .returning(s.ticket_id, s.tier_seen, s.tier_start)
    ).all()
    out = []
    for tid, tier, start in rows:
        budget = describe_minutes(getattr(pol.sla.tiers, tier))
        reason = f"{TIER_NAMES[tier]} did not resolve it within {budget}"
        key = f"tier:{tier}:{start.isoformat()}"
        out.append(Escalation(tid, tier, next_tier(tier), "tier", key, reason))
    return out


def _raise_tiers(
    conn: Connection, pol: Policy, events: list[Escalation], now: datetime
) -> list[Escalation]:
    """Move each ticket one tier up (or into the escalation queue); keep those that moved."""
    target = pol.sla.escalate_queue
    moved: list[Escalation] = []
    for from_tier in ("L1", "L2"):
        group = [e for e in events if e.from_tier == from_tier and e.to_tier != from_tier]
        to_tier = next_tier(from_tier)
        # updated_at is left alone: it tells when a person last worked on the ticket
        values: dict[str, Any] = {"tier": to_tier}
        if target:
            values["queue"] = target
        for chunk in _chunks([e.ticket_id for e in group]):
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
                update(ticket_sla)
                .where(ticket_sla.c.ticket_id.in_(done))
                .values(tier_seen=to_tier, tier_start=now, tier_breached_at=None)
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
    leads = team_leads(config, home.name)
    agents = _unique([*tier_agents(config, home.name, e.to_tier), *leads])
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
            agent_name=agent.full_name or agent.name,
            team_lead=agent in leads,
            from_tier=e.from_tier,
            from_tier_name=TIER_NAMES[e.from_tier],
            tier=e.to_tier,
            tier_name=TIER_NAMES[e.to_tier],
            reason=e.reason,
            due=due,
            priority_class=pol.sla.classes.class_of(f.priority),
        )
        out = _mail(
            config,
            home,
            f,
            kind="escalation",
            to=(agent.full_name, agent.address),
            subject=subject,
            template="escalation_agent.txt",
            context=ctx,
            cause=(e.key, agent.name),
            now=now,
        )
        _queue_mail(conn, config, out, now)


# -- reminders -----------------------------------------------------------------------------
def sweep_reminders(conn: Connection, config: Config, now: datetime) -> int:
    """Escalated tickets nobody touched for `update_hours`: remind the assignee (or the
    tier's agents), again every `update_hours` until someone does."""
    s, t = ticket_sla.c, tickets.c
    changed = 0
    for pol in policies(config).values():
        hours = pol.sla.update_hours
        if hours <= 0:
            continue
        cut = now - timedelta(hours=hours)
        ids = (
            conn.execute(
                update(ticket_sla)
                .where(_joined(), t.queue == pol.queue.name, t.tier != "L1", t.status.in_(REMINDED))
                .where(t.updated_at <= cut, s.tier_start <= cut)
                .where(or_(s.reminded_at.is_(None), s.reminded_at <= cut))
                .values(reminded_at=now)
                .returning(s.ticket_id)
            )
            .scalars()
            .all()
        )
        changed += _remind(conn, config, pol, ids, now, reason="update", every=hours)
    return changed


def sweep_shift_notes(conn: Connection, config: Config, now: datetime) -> int:
    """At the end of a shift, flag tickets worked on during it that got no internal note."""
    s, t, a = ticket_sla.c, tickets.c, articles.c
    changed = 0
    for pol in policies(config).values():
        ends = pol.sla.shift_minutes()
        if not ends:
            continue
        end, start = pol.calendar.shift_ends(now, ends)
        noted = exists().where(a.ticket_id == t.id, a.kind == "note", a.created_at > start)
        ids = (
            conn.execute(
                update(ticket_sla)
                .where(_joined(), t.queue == pol.queue.name, t.status.in_(WORKED))
                .where(t.assignee.is_not(None), t.updated_at > start, t.updated_at <= end, ~noted)
                .where(or_(s.shift_flagged_at.is_(None), s.shift_flagged_at < end))
                .values(shift_flagged_at=end)
                .returning(s.ticket_id)
            )
            .scalars()
            .all()
        )
        changed += _remind(conn, config, pol, ids, now, reason="shift_notes", shift_end=end)
    return changed


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
        agents = [owner] if owner else tier_agents(config, f.queue, f.tier)
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
                agent_name=agent.full_name or agent.name,
                reason=reason,
                idle=idle,
                last_update=_local_text(f.updated_at, pol.calendar),
                shift_end=_local_text(shift_end, pol.calendar) if shift_end else "",
            )
            out = _mail(
                config,
                pol.queue,
                f,
                kind="reminder",
                to=(agent.full_name, agent.address),
                subject=f"{pol.queue.tag_for(f.id)} Reminder, {what}: {f.title}",
                template="reminder.txt",
                context=ctx,
                cause=(*cause, agent.name),
                now=now,
            )
            _queue_mail(conn, config, out, now)
    return len(ids)


# -- auto-close ----------------------------------------------------------------------------
def sweep_close(conn: Connection, config: Config, now: datetime) -> int:
    """Close answered tickets the customer left alone for `close.after_days` days."""
    changed = 0
    # the review link comes from [sla] even where the SLA itself is disabled
    links = {name: s.review_link for name, s in sla_settings(config).items()}
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
    t = tickets.c
    cut = now - timedelta(days=days)
    rows = conn.execute(
        update(tickets)
        .where(t.queue == queue.name, t.status == "answered")
        .where(func.coalesce(t.last_answer_at, t.updated_at) <= cut)
        .values(status="closed", closed_at=now, updated_at=now)
        .returning(t.id, t.last_answer_at)
    ).all()
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
