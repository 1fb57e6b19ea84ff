"""Every mail the sweeps send: the facts a mail needs, and the Outgoing built from them.

The sweeps decide who is told about what; this module turns that into messages (rendered
templates, threading headers, a Message-ID derived from the cause, an agent's token
Reply-To) and hands them back as `Outgoing`s for `queue_mails`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from mailgate.agents import tokens
from mailgate.agents.access import TIER_NAMES, escalation_recipients, team_leads
from mailgate.autoresponse.render import render
from mailgate.config.load import Agent, Config, Queue
from mailgate.outgoing.compose import Outgoing, compose, reply_subject, stable_message_id
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
    kind: str,
    template: str,
    context: dict[str, Any],
    cause: tuple[object, ...],
    now: datetime,
    *,
    agent: Agent | None = None,
    subject: str = "",
) -> Outgoing:
    """One automatic mail of `kind` in the ticket's thread, its Message-ID derived from
    `cause`. To the requester (a reply to the ticket), or to `agent`: then its Reply-To
    carries the agent's token for this ticket, so a reply with command tags is
    authenticated like any other agent reply (tokens.py)."""
    reply = ""
    if agent is None:
        to = (f.requester_name, f.requester_addr)
        subject = subject or reply_subject(f.title, queue.tag_for(f.id))
    else:
        reply = tokens.reply_address(config.secret, agent.name, f.id, queue.address)
        to = (agent.full_name, agent.address)
        context = {**context, "agent_name": agent.full_name or agent.name, "reply_address": reply}
        cause = (*cause, agent.name)
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
        reply_to=reply,
        auto_submitted="auto-generated",
    )
    return Outgoing(kind, "", (to[1],), mid, raw, f.id)


def queue_mails(conn: Connection, config: Config, outs: Iterable[Outgoing], now: datetime) -> None:
    deadline = now + timedelta(hours=config.relay.give_up_after_hours)
    for out in outs:
        add_outbox(conn, out, now, deadline)


def _unique(agents: Iterable[Agent]) -> list[Agent]:
    return list({a.name: a for a in agents}.values())


def _expect_by(pol: Policy, now: datetime) -> datetime:
    hours = pol.sla.update_hours or 24.0
    return now + timedelta(hours=hours)


def customer_escalation_mail(
    config: Config, pol: Policy, f: MailFacts, e: Escalation, now: datetime
) -> Outgoing:
    """Tell the customer that the ticket was escalated and by when to expect news."""
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
    return _mail(config, queue, f, "escalated", "escalated.txt", ctx, (e.key,), now)


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
    verb = "Escalated to" if e.to_tier != e.from_tier else "Still unresolved at"
    subject = f"{home.tag_for(f.id)} {verb} {TIER_NAMES[e.to_tier]}: {f.title}"
    outs = []
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
        kind, template = "escalation", "escalation_agent.txt"
        outs.append(
            _mail(config, home, f, kind, template, ctx, (e.key,), now, agent=agent, subject=subject)
        )
    return outs


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
    what = "no update" if reason == "update" else "no shift notes"
    subject = f"{pol.queue.tag_for(f.id)} Reminder, {what}: {f.title}"
    outs = []
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
        outs.append(
            _mail(
                config,
                pol.queue,
                f,
                "reminder",
                "reminder.txt",
                ctx,
                cause,
                now,
                agent=agent,
                subject=subject,
            )
        )
    return outs


def closing_mail(
    config: Config,
    queue: Queue,
    f: MailFacts,
    *,
    days: int,
    review_link: str,
    answered: datetime | None,
    now: datetime,
) -> Outgoing:
    """Tell the customer that the ticket was closed after `days` days without a reply."""
    ctx = _context(
        config,
        queue,
        f,
        days=days,
        review_link=review_link,
        reopen_days=queue.close.reopen_window_days,
    )
    cause = (answered.isoformat() if answered else "",)
    return _mail(config, queue, f, "closed", "closed.txt", ctx, cause, now)
