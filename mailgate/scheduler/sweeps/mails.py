"""Every mail the sweeps send: the facts a mail needs, and which builder makes it.

The sweeps decide who is told about what; the builders of `mailgate.outgoing` make the
messages (so an agent's SLA or reminder mail carries the reply marker, footer, token
Reply-To and command address like every other agent mail) and `queue_mails` puts them in
the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from mailgate.agents.access import escalation_recipients, team_leads
from mailgate.config.model import Config, Queue
from mailgate.config.schema import Agent
from mailgate.outgoing import agent_mails, customer_mails
from mailgate.outgoing.compose import Outgoing
from mailgate.runtime import chunks
from mailgate.scheduler.calendar import BusinessCalendar, describe_minutes
from mailgate.scheduler.sweeps.events import Escalation
from mailgate.scheduler.sweeps.sql import CHUNK, Policy
from mailgate.store.articles import articles
from mailgate.store.outbox import add_outbox
from mailgate.store.tickets import tickets

log = logging.getLogger(__name__)


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
                first,
                last,
            )
    return out


def _local_text(when: datetime, cal: BusinessCalendar | None) -> str:
    local = when.astimezone(cal.tz) if cal else when
    return local.strftime("%Y-%m-%d %H:%M %Z")


def queue_mails(conn: Connection, config: Config, outs: Iterable[Outgoing], now: datetime) -> None:
    deadline = now + timedelta(hours=config.relay.give_up_after_hours)
    for out in outs:
        add_outbox(conn, out, now, deadline, config.governor)


def _unique(agents: Iterable[Agent]) -> list[Agent]:
    return list({a.name: a for a in agents}.values())


def _expect_by(pol: Policy, now: datetime) -> datetime:
    hours = pol.sla.update_hours or 24.0
    return now + timedelta(hours=hours)


def customer_escalation_mail(
    config: Config, pol: Policy, f: MailFacts, e: Escalation, now: datetime
) -> Outgoing:
    """Tell the customer that the ticket was escalated and by when to expect news."""
    return customer_mails.escalation_notice(
        config,
        pol.queue,  # the queue the customer wrote to, even if the ticket moved on
        f,
        tier=e.to_tier,
        reason=e.reason,
        expect_by=_local_text(_expect_by(pol, now), pol.calendar),
        key=e.key,
        now=now,
    )


def agent_escalation_mails(
    config: Config, pol: Policy, f: MailFacts, e: Escalation, now: datetime
) -> list[Outgoing]:
    """Tell the agents of the new tier and the team leads of the ticket's queue."""
    home = config.queue(f.queue) or pol.queue
    leads = team_leads(config.agents, home.name)
    agents = _unique([*escalation_recipients(config.agents, home.name, e.to_tier), *leads])
    if not agents:
        log.warning(
            "ticket #%d escalated to %s: no agent of queue %s to tell", f.id, e.to_tier, home.name
        )
    budget = getattr(pol.sla.tiers, e.to_tier, 0) if e.to_tier != "L1" else 0
    due = _local_text(pol.calendar.add(now, budget * 60), pol.calendar) if budget else ""
    return [
        agent_mails.escalation_alert(
            config,
            home,
            f,
            agent,
            from_tier=e.from_tier,
            to_tier=e.to_tier,
            reason=e.reason,
            due=due,
            priority_class=pol.sla.classes.class_of(f.priority),
            team_lead=agent in leads,
            key=e.key,
            now=now,
        )
        for agent in agents
    ]


def reminder_mails(
    config: Config,
    pol: Policy,
    f: MailFacts,
    agents: Sequence[Agent],
    *,
    reason: str,
    cause: tuple[object, ...],
    shift_end: datetime | None,
    now: datetime,
) -> list[Outgoing]:
    """Remind agents of a ticket with no update (`update`) or no shift notes (`shift_notes`)."""
    idle = describe_minutes((now - f.updated_at).total_seconds() / 60)
    return [
        agent_mails.reminder(
            config,
            pol.queue,
            f,
            agent,
            reason=reason,
            idle=idle,
            last_update=_local_text(f.updated_at, pol.calendar),
            shift_end=_local_text(shift_end, pol.calendar) if shift_end else "",
            cause=cause,
            now=now,
        )
        for agent in agents
    ]


def closing_mail(
    config: Config,
    queue: Queue,
    f: MailFacts,
    *,
    days: int,
    review_link: str,
    answered: datetime | None,
    now: datetime,
    satisfaction: str = "",
) -> Outgoing:
    """Tell the customer that the ticket was closed after `days` days without a reply."""
    return customer_mails.closing(
        config,
        queue,
        f,
        days=days,
        review_link=review_link,
        answered_at=answered,
        now=now,
        satisfaction=satisfaction,
    )
