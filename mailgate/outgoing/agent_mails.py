"""Mails to agents: notifications, command results, SLA escalations, reminders and shift
notes. Built by `builders.agent_mail`, so each carries the reply marker, the footer, the
token Reply-To and the command address. Bodies come from the sandboxed templates
`notify_*.txt`, `agent_*.txt`, `escalation_agent.txt` and `reminder.txt`, overridable per
queue like the auto-response; agent-only content (internal notes) may appear in them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from mailgate.agents import tokens
from mailgate.agents.access import TIER_NAMES
from mailgate.agents.plan import LineResult
from mailgate.autoresponse.render import render
from mailgate.config.model import Config, Queue
from mailgate.config.schema import Agent
from mailgate.outgoing.builders import (
    MailTicket,
    Thread,
    TicketMail,
    agent_mail,
    queue_context,
    ticket_context,
)
from mailgate.outgoing.compose import OutAttachment, Outgoing
from mailgate.outgoing.digest import ArticleSummary, HeldNotice, TicketDigest
from mailgate.outgoing.html import text_block

EVENTS = ("new_ticket", "customer_reply", "assigned", "escalated")
_SUBJECT = {
    "new_ticket": "New",
    "customer_reply": "Customer reply",
    "assigned": "Assigned to you",
    "escalated": "Escalated",
}
REMINDERS = {"update": "no update", "shift_notes": "no shift notes"}
_DIGEST_ID = "<mailgate.digest."  # compose.stable_message_id of a digest


def answers_digest(p: Any) -> bool:
    """Whether the parsed mail `p` is a reply to a digest (its In-Reply-To names one)."""
    return any(mid.startswith(_DIGEST_ID) for mid in p.in_reply_to)


def notifications(
    config: Config,
    queue: Queue,
    agents: Iterable[Agent],
    event: str,
    digest: TicketDigest,
    *,
    cause: str,
    now: datetime,
    actor: str = "",
    reason: str = "",
    attachments: tuple[OutAttachment, ...] = (),
    attachment_list: str = "",
    html: str = "",
) -> list[Outgoing]:
    """new_ticket | customer_reply | assigned | escalated, with the ticket's recent history.

    The body is rendered once for all agents; only headers and footer are per agent.
    `attachment_list` (the customer mail's attachments, agents/attachments.listing) goes
    under the body; `attachments` are the files carried. `html`: the customer's mail as
    safe HTML (outgoing/html.py): the notification gets an HTML part showing it, with its
    inline images, above the text.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    tag = queue.tag_for(digest.id)
    body = render(
        config.templates_dir,
        queue.name,
        f"notify_{event}.txt",
        queue_context(queue, ticket=digest, tag=tag, actor=actor, reason=reason),
        now,  # the files checked once per second of the mails' clock (autoresponse/render.py)
    )
    if attachment_list:
        body = f"{body.rstrip()}\n\n{attachment_list}"
    body_html = f"{html}\n<hr>\n{text_block(body)}" if html else ""
    return [
        agent_mail(
            config,
            queue,
            agent,
            kind=f"notify-{event}",
            subject=f"{tag} {_SUBJECT[event]}: {digest.title}",
            body=body,
            cause=(agent.name, f"{event}\x1f{digest.id}\x1f{cause}"),
            now=now,
            ticket_id=digest.id,
            reply_ticket=digest.id,
            attachments=attachments,
            html=body_html,
        )
        for agent in agents
    ]


def digest_mail(
    config: Config,
    queue: Queue,
    agent: Agent,
    digest: TicketDigest,
    *,
    held: tuple[HeldNotice, ...],
    notes: tuple[ArticleSummary, ...],
    cause: str,
    now: datetime,
) -> Outgoing:
    """The notifications the per-agent cap held on one ticket, in one mail, with the
    ticket's system notes since the agent's last mail about it. A reply to it is kept as
    an inert note (agents/handle.py): a responder answering it reaches nobody."""
    tag = queue.tag_for(digest.id)
    body = render(
        config.templates_dir,
        queue.name,
        "agent_digest.txt",
        queue_context(queue, agent=agent, ticket=digest, tag=tag, held=held, notes=notes),
    )
    return agent_mail(
        config,
        queue,
        agent,
        kind="digest",
        subject=f"{tag} Digest, {len(held)} more notification(s): {digest.title}",
        body=body,
        cause=(agent.name, f"digest\x1f{digest.id}\x1f{cause}"),
        now=now,
        ticket_id=digest.id,
        reply_ticket=digest.id,
    )


def attachment_mail(
    config: Config,
    queue: Queue,
    agent: Agent,
    stored: Any,  # agents.attachments.StoredAttachment
    attachment: OutAttachment,
    *,
    cause: str,
    now: datetime,
) -> Outgoing:
    """The answer to `#attachment N`: the one file, with what it is."""
    tag = queue.tag_for(stored.ticket_id)
    return agent_mail(
        config,
        queue,
        agent,
        kind="attachment",
        subject=f"{tag} Attachment [{stored.id}]: {stored.filename}",
        body=f"Attachment [{stored.id}] of ticket #{stored.ticket_id}: {stored.filename}"
        f" ({stored.content_type}, {stored.size} bytes).",
        cause=(agent.name, f"attachment\x1f{stored.id}\x1f{cause}"),
        now=now,
        ticket_id=stored.ticket_id,
        reply_ticket=stored.ticket_id,
        attachments=(attachment,),
    )


def no_token_notice(
    config: Config,
    queue: Queue,
    agent: Agent,
    *,
    ticket_id: int,
    subject: str,
    in_reply_to: str,
    cause: str,
    now: datetime,
) -> Outgoing:
    """An agent wrote to the queue address without a token: not applied, how to answer."""
    body = render(
        config.templates_dir,
        queue.name,
        "agent_no_token.txt",
        queue_context(queue, agent=agent, ticket_id=ticket_id, held=True),
    )
    return agent_mail(
        config,
        queue,
        agent,
        kind="agent-no-token",
        subject=f"Not applied: {subject.strip() or f'ticket #{ticket_id}'}",
        body=body,
        cause=(agent.name, cause),
        now=now,
        ticket_id=ticket_id,
        reply_ticket=ticket_id,
        thread=Thread.answering(in_reply_to),
    )


def command_result(
    config: Config,
    queue: Queue,
    agent: Agent,
    *,
    ok: bool,
    lines: tuple[LineResult, ...],
    ticket_id: int,
    subject: str,
    in_reply_to: str,
    cause: str,
    now: datetime,
    headline: str,
    sections: tuple[str, ...] = (),
    reply_ticket: int | None = None,
) -> Outgoing:
    """The confirmation of an applied set, or the transcript of what was wrong."""
    rows = [(f"line {r.line}" if r.line else "text", r.text, r.message) for r in lines]
    body = render(
        config.templates_dir,
        queue.name,
        "agent_result.txt",
        queue_context(
            queue, agent=agent, ok=ok, headline=headline, rows=rows, sections=list(sections)
        ),
    )
    prefix = "Done" if ok else "Not applied"
    clean = subject.strip() or (f"ticket #{ticket_id}" if ticket_id else "your mail")
    return agent_mail(
        config,
        queue,
        agent,
        kind="agent-result" if ok else "agent-error",
        subject=f"{prefix}: {clean}",
        body=body,
        cause=(agent.name, cause),
        now=now,
        ticket_id=ticket_id or None,
        reply_ticket=ticket_id if reply_ticket is None else reply_ticket,
        thread=Thread.answering(in_reply_to),
    )


def escalation_alert(
    config: Config,
    queue: Queue,
    t: MailTicket,
    agent: Agent,
    *,
    from_tier: str,
    to_tier: str,
    reason: str,
    due: str,
    priority_class: str,
    team_lead: bool,
    key: str,
    now: datetime,
) -> Outgoing:
    """Tell an agent of the tier (or a team lead) that the SLA moved a ticket to them,
    or that the top tier used up its time (from_tier == to_tier)."""
    verb = "Escalated to" if to_tier != from_tier else "Still unresolved at"
    context = ticket_context(
        config,
        queue,
        t,
        team_lead=team_lead,
        from_tier=from_tier,
        from_tier_name=TIER_NAMES[from_tier],
        tier=to_tier,
        tier_name=TIER_NAMES[to_tier],
        reason=reason,
        due=due,
        priority_class=priority_class,
    )
    subject = f"{queue.tag_for(t.id)} {verb} {TIER_NAMES[to_tier]}: {t.title}"
    mail = TicketMail("escalation", subject, "escalation_agent.txt", context, (key,))
    return _about_ticket(config, queue, t, agent, mail, now)


def reminder(
    config: Config,
    queue: Queue,
    t: MailTicket,
    agent: Agent,
    *,
    reason: str,
    idle: str,
    last_update: str,
    shift_end: str,
    cause: tuple[object, ...],
    now: datetime,
) -> Outgoing:
    """Remind an agent of an escalated ticket without update (reason "update") or of a
    ticket worked on during a shift without an internal note (reason "shift_notes")."""
    context = ticket_context(
        config,
        queue,
        t,
        reason=reason,
        idle=idle,
        last_update=last_update,
        shift_end=shift_end,
    )
    subject = f"{queue.tag_for(t.id)} Reminder, {REMINDERS[reason]}: {t.title}"
    return _about_ticket(
        config,
        queue,
        t,
        agent,
        TicketMail("reminder", subject, "reminder.txt", context, cause),
        now,
    )


def _about_ticket(
    config: Config, queue: Queue, t: MailTicket, agent: Agent, mail: TicketMail, now: datetime
) -> Outgoing:
    """A scheduler mail to one agent, threaded under the ticket's mail."""
    reply = tokens.reply_address(config.secret, agent.name, t.id, queue.address)
    context = {**mail.context, "agent_name": agent.full_name or agent.name, "reply_address": reply}
    return agent_mail(
        config,
        queue,
        agent,
        kind=mail.kind,
        subject=mail.subject,
        body=render(config.templates_dir, queue.name, mail.template, context),
        cause=(t.id, *mail.cause, agent.name),
        now=now,
        ticket_id=t.id,
        reply_ticket=t.id,
        thread=Thread.of_ticket(t.first_mid, t.last_mid),
    )
