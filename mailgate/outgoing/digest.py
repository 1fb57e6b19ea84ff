"""What mails to agents show about tickets: the digest, ticket lists, the help text. Pure.

Sections are rendered from the templates `agent_help.txt`, `agent_list.txt` and
`agent_show.txt`, overridable per queue; `agent_mails` puts them in a mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailgate.agents import tokens
from mailgate.agents.commands.registry import GRAMMAR
from mailgate.autoresponse.render import render
from mailgate.config.model import Config, Queue
from mailgate.config.schema import Agent
from mailgate.outgoing.builders import queue_context

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
class HeldNotice:
    """A notification the per-agent cap held, as the digest lists it."""

    when: str
    event: str  # "Customer reply", "New" ...
    subject: str


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
    """`at.strftime("%Y-%m-%d %H:%M UTC")`, formatted in Python (a third of strftime's time)."""
    if not at:
        return ""
    if at.year < 1000:  # strftime's %Y does not pad these
        return at.strftime("%Y-%m-%d %H:%M UTC")
    return f"{at.year}-{at.month:02}-{at.day:02} {at.hour:02}:{at.minute:02} UTC"


def shorten(text: str) -> str:
    """At most MAX_ARTICLE_LINES lines / MAX_ARTICLE_CHARS characters of an article."""
    text = text.strip()
    lines = text.split("\n")
    cut = len(lines) > MAX_ARTICLE_LINES or len(text) > MAX_ARTICLE_CHARS
    text = "\n".join(lines[:MAX_ARTICLE_LINES])[:MAX_ARTICLE_CHARS]
    return text + ("\n[...]" if cut else "")


def help_section(config: Config, queue: Queue, agent: Agent) -> str:
    return render(
        config.templates_dir,
        queue.name,
        "agent_help.txt",
        queue_context(queue, agent=agent, grammar=GRAMMAR),
    )


def list_section(
    config: Config, queue: Queue, agent: Agent, title: str, rows: tuple[ListedTicket, ...]
) -> str:
    return render(
        config.templates_dir,
        queue.name,
        "agent_list.txt",
        queue_context(queue, agent=agent, title=title, rows=rows),
    )


def show_section(config: Config, queue: Queue, agent: Agent, digest: TicketDigest) -> str:
    reply = tokens.reply_address(config.secret, agent.name, digest.id, queue.address)
    return render(
        config.templates_dir,
        queue.name,
        "agent_show.txt",
        queue_context(queue, agent=agent, ticket=digest, reply_address=reply),
    )
