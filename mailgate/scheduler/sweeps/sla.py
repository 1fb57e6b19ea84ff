"""The SLA sweep: tickets that missed a target move one tier up, and people are told.

Tier 1 has the class targets (first response, resolution); Tier 2 and 3 have their tier's
budget. Each target is an instant from `thresholds`, so a breach is a column comparison.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, false, or_, update

from mailgate.agents.access import TIER_NAMES, next_tier
from mailgate.autoresponse.render import TemplateError
from mailgate.config.model import Config
from mailgate.config.sla import SlaSettings
from mailgate.runtime import chunks
from mailgate.scheduler.calendar import CLASSES, Thresholds, describe_minutes, thresholds
from mailgate.scheduler.sweeps.events import Escalation
from mailgate.scheduler.sweeps.mails import (
    agent_escalation_mails,
    customer_escalation_mail,
    mail_facts,
    queue_mails,
)
from mailgate.scheduler.sweeps.sql import (
    ACTOR,
    CHUNK,
    RUNNING,
    Policy,
    capped_sla_update,
    policies,
    ticket_sla,
)
from mailgate.store.audit import audit
from mailgate.store.tickets import add_to_queue, tickets

log = logging.getLogger(__name__)


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
        audit(
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
        outs = agent_escalation_mails(config, pol, f, e, now)
        if e.to_tier != e.from_tier and pol.sla.notify_customer and f.requester_addr:
            outs.append(customer_escalation_mail(config, pol, f, e, now))
        queue_mails(conn, config, outs, now)


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
                add_to_queue(conn, done, target)
            moved += [e for e in group if e.ticket_id in done]
    return moved + [e for e in events if e.to_tier == e.from_tier]
