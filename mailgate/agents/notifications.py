"""Who hears of a ticket's events, and the notifications queued for them."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Row

from mailgate.agents import access, attachments
from mailgate.agents.html_reply import new_html
from mailgate.agents.plan import Assigned, Event
from mailgate.agents.queries import notification_reads, ticket_digest, ticket_view
from mailgate.config.model import Config, Queue
from mailgate.config.schema import Agent
from mailgate.outgoing import agent_mails
from mailgate.outgoing.compose import Outgoing
from mailgate.store.batch import current
from mailgate.store.outbox import queue_mails


def customer_reply_recipients(
    agents: Iterable[Agent], queues: Iterable[str], assignee: str, sticky: bool, exclude: str = ""
) -> list[Agent]:
    """Sticky and assigned: the assignee alone; otherwise the ticket is back in the queue."""
    agents = list(agents)
    if sticky and assignee:
        return [a for a in agents if a.name == assignee and a.name != exclude]
    return access.queue_agents(agents, queues, exclude)


@dataclass(frozen=True)
class CustomerMailNotice:
    """A new ticket or a customer reply to tell the agents of (`notify_customer_mail`)."""

    ticket_id: int
    created: bool
    sender: str
    cause: str
    now: datetime
    article_id: int | None
    html: str


def notify_customer_mail(
    conn: Connection,
    config: Config,
    ticket_id: int,
    *,
    created: bool,
    sender: str,
    cause: str,
    now: datetime,
    article_id: int | None = None,
    html: str = "",
) -> None:
    """Queue notifications for a new ticket or a customer reply. They list the attachments
    of the customer's mail (`article_id`) and carry them up to the queue's cap; a
    customer's HTML mail (`html`, as parsed) is shown in an HTML part, quotes cut and
    sanitised, its inline images by cid:. In an optimistic batch that holds the mail's
    rows they are queued when those are written (store/batch.py, `Notices`): reading them
    back now would write them one mail at a time."""
    if not config.agents or not any(q.agent_mail.notify for q in config.queues):
        return  # the common case costs no query
    notice = CustomerMailNotice(ticket_id, created, sender, cause, now, article_id, html)
    batch = current(conn)
    requester = batch.requester_of(ticket_id) if batch is not None else None
    if batch is None or requester is None:
        queue_notice(conn, config, notice)
    else:
        batch.hold_notice(functools.partial(_queue_all, config), notice, ticket_id, requester)


def _queue_all(config: Config, conn: Connection, notices: list[CustomerMailNotice]) -> None:
    for notice in notices:
        queue_notice(conn, config, notice)


def queue_notice(conn: Connection, config: Config, notice: CustomerMailNotice) -> int:
    """Queue the notifications of `notice` now; the number queued."""
    found = notification_reads(conn, config, notice.ticket_id, notice.article_id)
    if found is None:
        return 0
    row, view, digest, items = found
    queue = config.queue(row.queue)
    if queue is None or not queue.agent_mail.notify:
        return 0
    sender_agent = config.agent_by_address(notice.sender) if notice.sender else None
    exclude = sender_agent.name if sender_agent else ""
    if notice.created:
        event = "new_ticket"
        recipients = access.queue_agents(config.agents, view.queues, exclude)
    else:
        event = "customer_reply"
        recipients = customer_reply_recipients(
            config.agents, view.queues, row.assignee or "", bool(row.sticky), exclude
        )
    if not recipients:
        return 0
    carry = attachments.carried(items, queue.agent_mail.attachments_max_bytes)
    mails = agent_mails.notifications(
        config,
        queue,
        recipients,
        event,
        digest,
        cause=notice.cause,
        now=notice.now,
        attachments=tuple(attachments.out(conn, a) for a in carry),
        attachment_list=attachments.listing(items, {a.id for a in carry}),
        html=new_html(notice.html),
    )
    return queue_mails(conn, mails, notice.now, config.relay.give_up_after_hours, config.governor)


def event_notifications(
    conn: Connection,
    config: Config,
    queue: Queue,
    row: Row,
    events: Iterable[Event],
    *,
    actor: Agent,
    actor_display: str,
    created: bool,
    cause: str,
    now: datetime,
) -> list[Outgoing]:
    """Who must hear of an agent's events on the ticket `row` (each agent once, the actor
    never): assignees, the escalation's tier, and the queue for a ticket opened by #new."""
    told: set[str] = {actor.name}
    batches: list[tuple[str, list[Agent], str]] = []  # (event, agents, reason)

    def newly(agents: list[Agent]) -> list[Agent]:
        fresh = [a for a in agents if a.name not in told]
        told.update(a.name for a in fresh)
        return fresh

    for event in events:
        if isinstance(event, Assigned):
            target = config.agent(event.agent)
            batches.append(("assigned", newly([target] if target else []), ""))
        else:
            found = access.escalation_recipients(
                config.agents, event.queue, event.tier, exclude=told
            )
            batches.append(("escalated", newly(found), event.reason))
    if created and queue.agent_mail.notify:
        members = access.queue_agents(config.agents, ticket_view(conn, row).queues)
        batches.append(("new_ticket", newly(members), ""))
    batches = [b for b in batches if b[1]]
    if not batches:
        return []
    digest = ticket_digest(conn, config, row)
    return [
        mail
        for event, agents, reason in batches
        for mail in agent_mails.notifications(
            config,
            queue,
            agents,
            event,
            digest,
            cause=cause,
            now=now,
            actor=actor_display,
            reason=reason,
        )
    ]
