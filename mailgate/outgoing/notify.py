"""Mail to agents: notifications, command results, lists. Pure given the facts.

Every mail to an agent starts with `commands.REPLY_MARKER` (so an agent's reply can be cut
there before anything reaches a customer), and carries in its headers (set here, never by
templates):

  Reply-To                      the queue address with the agent's token for the ticket
  X-Mailgate-Command-Address    the agent's command address (ticket 0: #new, #list, #help)
  X-Mailgate-Ticket             the ticket number

Bodies come from the sandboxed templates `notify_*.txt` and `agent_*.txt`, overridable per
queue like the auto-response. Agent-only content (internal notes) may appear here: these
mails go to agents only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from mailgate.agents import tokens
from mailgate.agents.access import queue_agents
from mailgate.agents.commands import GRAMMAR, REPLY_MARKER, LineResult
from mailgate.autoresponse.render import render
from mailgate.config.model import Config, Queue
from mailgate.config.schema import Agent
from mailgate.outgoing.compose import Outgoing, compose, stable_message_id

log = logging.getLogger(__name__)

EVENTS = ("new_ticket", "customer_reply", "assigned", "escalated")
_SUBJECT = {
    "new_ticket": "New",
    "customer_reply": "Customer reply",
    "assigned": "Assigned to you",
    "escalated": "Escalated",
}
MAX_ARTICLE_LINES = 40
MAX_ARTICLE_CHARS = 4000


@dataclass(frozen=True)
class ArticleSummary:
    when: str  # "2025-01-02 10:00 UTC"
    kind: str  # inbound | outbound | note | system
    who: str  # sender address or agent name
    text: str  # shortened body


@dataclass(frozen=True)
class OtherTicket:
    id: int
    status: str
    created: str
    title: str


@dataclass(frozen=True)
class TicketDigest:
    """What an agent mail shows about a ticket."""

    id: int
    title: str
    queue: str
    status: str
    priority: int
    assignee: str  # "" if unassigned
    sticky: bool
    tier: str
    requester: str  # "Name <addr>" or addr
    ccs: tuple[str, ...]
    tags: tuple[str, ...]
    complexity: str
    created: str
    history: tuple[ArticleSummary, ...]  # oldest first
    latest: tuple[OtherTicket, ...]  # the requester's other tickets, newest first


@dataclass(frozen=True)
class ListedTicket:
    id: int
    priority: int
    status: str
    queue: str
    created: str
    title: str
    assignee: str
    reply_address: str


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else ""


def shorten(text: str) -> str:
    """At most MAX_ARTICLE_LINES lines / MAX_ARTICLE_CHARS characters of an article."""
    text = text.strip()
    lines = text.split("\n")
    cut = len(lines) > MAX_ARTICLE_LINES or len(text) > MAX_ARTICLE_CHARS
    text = "\n".join(lines[:MAX_ARTICLE_LINES])[:MAX_ARTICLE_CHARS]
    return text + ("\n[...]" if cut else "")


# --------------------------------------------------------------------------- recipients


def customer_reply_recipients(
    agents: Iterable[Agent], queues: Iterable[str], assignee: str, sticky: bool, exclude: str = ""
) -> list[Agent]:
    """Sticky and assigned: the assignee alone; otherwise the ticket is back in the queue."""
    agents = list(agents)
    if sticky and assignee:
        return [a for a in agents if a.name == assignee and a.name != exclude]
    return queue_agents(agents, queues, exclude)


# --------------------------------------------------------------------------- composing


def agent_mail(
    config: Config,
    queue: Queue,
    agent: Agent,
    *,
    kind: str,
    subject: str,
    body: str,
    cause: str,
    now: datetime,
    ticket_id: int | None,
    reply_ticket: int,
    in_reply_to: str = "",
) -> Outgoing:
    """One mail to an agent: marker line, body, footer, token Reply-To, command address."""
    secret = config.secret
    mid = stable_message_id(config.main.hostname, kind, agent.name, cause)
    reply_to = tokens.reply_address(secret, agent.name, reply_ticket, queue.address)
    command_address = tokens.command_address(secret, agent.name, queue.address)
    footer = render(
        config.templates_dir,
        queue.name,
        "_agent_footer.txt",
        _context(queue, agent=agent, command_address=command_address),
    )
    extra = [("X-Mailgate-Command-Address", command_address)]
    if ticket_id:
        extra.append(("X-Mailgate-Ticket", str(ticket_id)))
    raw = compose(
        from_addr=queue.address,
        from_name=f"{queue.from_name} (mailgate)",
        to=((agent.full_name, agent.address),),
        subject=subject,
        body=f"{REPLY_MARKER}\n\n{body.rstrip()}\n\n{footer}",
        message_id=mid,
        date=now,
        hostname=config.main.hostname,
        in_reply_to=in_reply_to,
        references=(in_reply_to,) if in_reply_to else (),
        reply_to=reply_to,
        auto_submitted="auto-generated",
        extra=tuple(extra),
    )
    return Outgoing(kind, "", (agent.address,), mid, raw, ticket_id or None)


def _context(queue: Queue, **more: object) -> dict[str, object]:
    return {"queue_name": queue.from_name, "queue_address": queue.address, **more}


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
) -> list[Outgoing]:
    """new_ticket | customer_reply | assigned | escalated, with the ticket's recent history.

    The body is rendered once for all agents; only headers and footer are per agent.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    tag = queue.tag_for(digest.id)
    body = render(
        config.templates_dir,
        queue.name,
        f"notify_{event}.txt",
        _context(queue, ticket=digest, tag=tag, actor=actor, reason=reason),
    )
    return [
        agent_mail(
            config,
            queue,
            agent,
            kind=f"notify-{event}",
            subject=f"{tag} {_SUBJECT[event]}: {digest.title}",
            body=body,
            cause=f"{event}\x1f{digest.id}\x1f{cause}",
            now=now,
            ticket_id=digest.id,
            reply_ticket=digest.id,
        )
        for agent in agents
    ]


def result_mail(
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
    rows = [(_where(r), r.text, r.message) for r in lines]
    body = render(
        config.templates_dir,
        queue.name,
        "agent_result.txt",
        _context(queue, agent=agent, ok=ok, headline=headline, rows=rows, sections=list(sections)),
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
        cause=cause,
        now=now,
        ticket_id=ticket_id or None,
        reply_ticket=ticket_id if reply_ticket is None else reply_ticket,
        in_reply_to=in_reply_to,
    )


def _where(r: LineResult) -> str:
    return f"line {r.line}" if r.line else "text"


def help_section(config: Config, queue: Queue, agent: Agent) -> str:
    return render(
        config.templates_dir,
        queue.name,
        "agent_help.txt",
        _context(queue, agent=agent, grammar=GRAMMAR),
    )


def list_section(
    config: Config, queue: Queue, agent: Agent, title: str, rows: tuple[ListedTicket, ...]
) -> str:
    return render(
        config.templates_dir,
        queue.name,
        "agent_list.txt",
        _context(queue, agent=agent, title=title, rows=rows),
    )


def show_section(config: Config, queue: Queue, agent: Agent, digest: TicketDigest) -> str:
    reply = tokens.reply_address(config.secret, agent.name, digest.id, queue.address)
    return render(
        config.templates_dir,
        queue.name,
        "agent_show.txt",
        _context(queue, agent=agent, ticket=digest, reply_address=reply),
    )
