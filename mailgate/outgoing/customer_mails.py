"""Mails to customers: the acknowledgement, an agent's answer, the closing, resolving
(satisfaction survey) and escalation notices. Built by `builders.customer_mail`; none of
them carries a reply token."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from mailgate.agents import tokens
from mailgate.agents.access import TIER_NAMES
from mailgate.autoresponse.render import render
from mailgate.config.model import Config, Queue
from mailgate.config.schema import Agent
from mailgate.outgoing.builders import (
    MailTicket,
    Thread,
    TicketMail,
    customer_mail,
    ticket_context,
    ticket_vars,
)
from mailgate.outgoing.compose import OutAttachment, Outgoing, reply_subject
from mailgate.outgoing.html import text_block
from mailgate.parse.message import Parsed
from mailgate.pgp.outgoing import ack_context
from mailgate.pipeline.decide import Decision


def agent_display(agent: Agent) -> str:
    """`Alice Example, Senior engineer`: the From name of an agent's answer."""
    name = agent.full_name or agent.name
    return f"{name}, {agent.description}" if agent.description else name


def ack(
    config: Config, queue: Queue, ticket_id: int, p: Parsed, d: Decision, now: datetime
) -> Outgoing:
    """The auto-response to a new ticket (RFC 3834 auto-replied, under the customer's mail)."""
    tag = queue.tag_for(ticket_id)
    title = d.new_ticket.title if d.new_ticket else p.subject
    context = {
        **ticket_vars(queue, ticket_id, title, p.from_addr, p.from_name),
        **ack_context(queue),  # pgp_fingerprint, pgp_public_key
    }
    # a burst of new tickets: the template's files checked once per second of `now`
    body = render(config.templates_dir, queue.name, queue.autoresponse.template, context, now)
    return customer_mail(
        config,
        queue,
        kind="ack",
        to=(p.from_name, p.from_addr),
        subject=reply_subject(p.subject, tag),
        body=body,
        cause=(d.dedupe_key,),
        now=now,
        ticket_id=ticket_id,
        thread=Thread(p.message_id, tuple(r for r in (*p.references, p.message_id) if r)),
        auto_submitted="auto-replied",
    )


def answer(
    config: Config,
    queue: Queue,
    agent: Agent,
    *,
    ticket_id: int,
    requester: tuple[str, str],
    ccs: tuple[str, ...],
    subject: str,
    text: str,
    thread: Thread,
    cause: str,
    now: datetime,
    attachments: tuple[OutAttachment, ...] = (),
    html: str = "",
    html_signed: bool = False,
) -> tuple[Outgoing, str]:
    """The agent's answer as the customer sees it (and its body): from the queue, signed by
    the agent, with the agent's files.

    Only the agent's own text and the footer template go in: never notes, history, tokens.
    `html`: the same answer as safe HTML (agents/html_reply.py), sent beside the text with
    the inline images it shows; `html_signed`: it already ends with the agent's signature.
    """

    def footer_with(signature: str) -> str:
        return render(
            config.templates_dir,
            queue.name,
            "answer_footer.txt",
            {
                "agent_display": agent_display(agent),
                "agent_name": agent.full_name or agent.name,
                "agent_signature": signature,
                "queue_name": queue.from_name,
                "queue_address": queue.address,
                "tag": queue.tag_for(ticket_id),
                "ticket_id": ticket_id,
            },
        )

    footer = footer_with(agent.signature)
    if tokens.contains_token(text) or tokens.contains_token(footer) or tokens.contains_token(html):
        raise ValueError("refusing to send a reply token to a customer")
    if html:
        html = f"{html}\n{text_block(footer_with('') if html_signed else footer)}"
    body = f"{text.rstrip()}\n\n{footer}"
    out = customer_mail(
        config,
        queue,
        kind="answer",
        to=requester,
        cc=ccs,
        subject=subject,
        body=body,
        cause=(cause,),
        now=now,
        ticket_id=ticket_id,
        thread=thread,
        from_name=agent_display(agent),
        auto_submitted="no",  # a person wrote it (RFC 3834); the loop header still marks it
        attachments=attachments,
        html=html,
    )
    return out, body


def escalation_notice(
    config: Config,
    queue: Queue,
    t: MailTicket,
    *,
    tier: str,
    reason: str,
    expect_by: str,
    key: str,
    now: datetime,
) -> Outgoing:
    """Tell the customer their ticket went up a tier, and by when they hear from us."""
    context = ticket_context(
        config, queue, t, tier=tier, tier_name=TIER_NAMES[tier], reason=reason, expect_by=expect_by
    )
    subject = reply_subject(t.title, queue.tag_for(t.id))
    mail = TicketMail("escalated", subject, "escalated.txt", context, (key,))
    return _about_ticket(config, queue, t, mail, now)


def closing(
    config: Config,
    queue: Queue,
    t: MailTicket,
    *,
    days: int,
    review_link: str,
    answered_at: datetime | None,
    now: datetime,
    satisfaction: str = "",
) -> Outgoing:
    """Tell the customer an answered ticket was closed, and how to open it again (and,
    given the rendered `survey_block`, ask for a rating)."""
    context = ticket_context(
        config,
        queue,
        t,
        days=days,
        review_link=review_link,
        reopen_days=queue.close.reopen_window_days,
        satisfaction=satisfaction,
    )
    cause = (answered_at.isoformat() if answered_at else "",)
    subject = reply_subject(t.title, queue.tag_for(t.id))
    return _about_ticket(
        config, queue, t, TicketMail("closed", subject, "closed.txt", context, cause), now
    )


def rating_link(queue: Queue, ticket_id: int, score: int) -> str:
    """A mailto link that answers the survey with `score` (subject and body carry it)."""
    subject = quote(f"Rating {score} {queue.tag_for(ticket_id)}")
    return f"mailto:{queue.address}?subject={subject}&body={score}"


def survey_block(config: Config, queue: Queue, t: MailTicket, review_link: str) -> str:
    """The queue's `satisfaction.txt`: the 1-5 question, its links, the review link."""
    links = [(n, rating_link(queue, t.id, n)) for n in range(5, 0, -1)]
    context = ticket_context(config, queue, t, rating_links=links, review_link=review_link)
    return render(config.templates_dir, queue.name, "satisfaction.txt", context)


def resolved_notice(
    config: Config,
    queue: Queue,
    t: MailTicket,
    *,
    status: str,
    satisfaction: str,
    cause: str,
    now: datetime,
) -> Outgoing:
    """Tell the customer an agent resolved or closed the ticket, with the survey."""
    context = ticket_context(
        config,
        queue,
        t,
        status=status,
        satisfaction=satisfaction,
        reopen_days=queue.close.reopen_window_days,
    )
    subject = reply_subject(t.title, queue.tag_for(t.id))
    mail = TicketMail("survey", subject, "resolved.txt", context, (cause,))
    return _about_ticket(config, queue, t, mail, now)


def _about_ticket(
    config: Config, queue: Queue, t: MailTicket, mail: TicketMail, now: datetime
) -> Outgoing:
    """A scheduler mail to the requester, threaded under the ticket's mail."""
    return customer_mail(
        config,
        queue,
        kind=mail.kind,
        to=(t.requester_name, t.requester_addr),
        subject=mail.subject,
        body=render(config.templates_dir, queue.name, mail.template, mail.context),
        cause=(t.id, *mail.cause),
        now=now,
        ticket_id=t.id,
        thread=Thread.of_ticket(t.first_mid, t.last_mid),
    )
