"""The two builders every outgoing mail is made by: one to a customer, one to an agent. Pure.

A mail to a customer comes from the queue address and never carries a reply token. A
mail to an agent starts with `commands.REPLY_MARKER` (an agent's reply is cut there
before anything reaches a customer), ends with the `_agent_footer.txt` template, and
carries in its headers (set here, never by templates):

  Reply-To                      the queue address with the agent's token for the ticket
  X-Mailgate-Command-Address    the agent's command address (ticket 0: #new, #list, #help)
  X-Mailgate-Ticket             the ticket number

`compose` gives every message Auto-Submitted and the loop header. The Message-ID is derived
from the mail's kind and its cause, so building the same mail again gives the same id and
the outbox refuses the copy. The mails themselves are built in `customer_mails` and
`agent_mails` on top of these two; `agent_only_headers` serves the `#secret` answer, whose
reply must not come back into the mail path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import formataddr
from functools import lru_cache
from typing import Any, Protocol

from mailgate.agents import tokens
from mailgate.agents.access import TIER_NAMES
from mailgate.agents.reply import REPLY_MARKER
from mailgate.autoresponse.render import render
from mailgate.config.model import Config, Queue
from mailgate.config.schema import Agent
from mailgate.outgoing.compose import (
    LOOP_HEADER,
    OutAttachment,
    Outgoing,
    compose,
    date_header,
    header_text,
    stable_message_id,
)
from mailgate.outgoing.html import document, text_block


@dataclass(frozen=True)
class Thread:
    """Where a mail threads: In-Reply-To and References."""

    in_reply_to: str = ""
    references: tuple[str, ...] = ()

    @classmethod
    def answering(cls, message_id: str) -> Thread:
        """A reply to one message."""
        return cls(message_id, (message_id,)) if message_id else cls()

    @classmethod
    def of_ticket(cls, first_mid: str, last_mid: str) -> Thread:
        """A mail about a ticket: under its latest message, referring to its first."""
        return cls(last_mid, tuple(dict.fromkeys(m for m in (first_mid, last_mid) if m)))


class MailTicket(Protocol):
    """What the scheduler's mails say about a ticket (the scheduler's MailFacts has it)."""

    id: int
    title: str
    requester_addr: str
    requester_name: str
    priority: int
    tier: str
    first_mid: str  # the ticket's first and latest Message-IDs: where its mail threads
    last_mid: str


@dataclass(frozen=True)
class TicketMail:
    """A scheduler mail about one ticket, before it is addressed."""

    kind: str
    subject: str
    template: str
    context: dict[str, Any]
    cause: tuple[object, ...]  # with the ticket id, what makes the Message-ID


def queue_context(queue: Queue, **more: object) -> dict[str, object]:
    """Template variables every mail of a queue has."""
    return {"queue_name": queue.from_name, "queue_address": queue.address, **more}


def ticket_vars(
    queue: Queue, ticket_id: int, title: str, requester: str, requester_name: str
) -> dict[str, object]:
    """Template variables of every mail about one ticket (the ack's too)."""
    tag = queue.tag_for(ticket_id)
    return {
        **queue_context(queue),
        "ticket_id": ticket_id,
        "ticket_ref": tag.strip("[]"),
        "tag": tag,
        "title": title,
        "requester": requester,
        "requester_name": requester_name,
    }


def ticket_context(config: Config, queue: Queue, t: MailTicket, **more: Any) -> dict[str, Any]:
    """Template variables of a scheduler mail about one ticket (closing, escalation, reminder)."""
    return {
        **ticket_vars(queue, t.id, t.title, t.requester_addr, t.requester_name),
        "priority": t.priority,
        "tier": t.tier,
        "tier_name": TIER_NAMES.get(t.tier, t.tier),
        "hostname": config.main.hostname,
        **more,
    }


def customer_mail(
    config: Config,
    queue: Queue,
    *,
    kind: str,
    to: tuple[str, str],
    subject: str,
    body: str,
    cause: tuple[object, ...],
    now: datetime,
    ticket_id: int,
    thread: Thread = Thread(),
    cc: tuple[str, ...] = (),
    from_name: str = "",
    auto_submitted: str = "auto-generated",
    attachments: tuple[OutAttachment, ...] = (),
    html: str = "",
) -> Outgoing:
    """A mail to the requester (name, address) from the queue address; with `html` (the
    body as safe HTML, outgoing/html.py) also an HTML part showing inline images.

    Every mail's envelope sender is the queue address, which the sender turns into the
    outbox row's VERP address (bounces/verp.py), so a bounce finds the mail it reports.
    """
    mid = stable_message_id(config.main.hostname, kind, *cause)
    fields = {
        "from_name": from_name or queue.from_name,
        "to": (to,),
        "cc": cc,
        "subject": subject,
        "body": body,
        "auto_submitted": auto_submitted,
        "attachments": attachments,
        "html": document(html) if html else "",
    }
    raw = _compose(config, queue, mid, now, thread, fields)
    return Outgoing(kind, queue.address, (to[1], *cc), mid, raw, ticket_id)


def agent_mail(
    config: Config,
    queue: Queue,
    agent: Agent,
    *,
    kind: str,
    subject: str,
    body: str,
    cause: tuple[object, ...],
    now: datetime,
    ticket_id: int | None,
    reply_ticket: int,
    thread: Thread = Thread(),
    attachments: tuple[OutAttachment, ...] = (),
    html: str = "",
) -> Outgoing:
    """One mail to an agent: marker line, body, footer, token Reply-To, command address.

    `reply_ticket` is the ticket the Reply-To token is for (0: the command address).
    `html`: the body as safe HTML (outgoing/html.py) for an HTML part beside the text,
    between the same marker line and footer.
    """
    secret = config.secret
    mid = stable_message_id(config.main.hostname, kind, *cause)
    reply_to = tokens.reply_address(secret, agent.name, reply_ticket, queue.address)
    command_address = _command_address(secret, agent.name, queue.address)
    footer = render(
        config.templates_dir,
        queue.name,
        "_agent_footer.txt",
        queue_context(queue, agent=agent, command_address=command_address),
        now,  # two stats a mail otherwise: every agent notified of every customer mail
    )
    extra = [("X-Mailgate-Command-Address", command_address)]
    if ticket_id:
        extra.append(("X-Mailgate-Ticket", str(ticket_id)))
    fields = {
        "from_name": f"{queue.from_name} (mailgate)",
        "to": ((agent.full_name, agent.address),),
        "subject": subject,
        "body": f"{REPLY_MARKER}\n\n{body.rstrip()}\n\n{footer}",
        "reply_to": reply_to,
        "auto_submitted": "auto-generated",
        "extra": tuple(extra),
        "attachments": attachments,
        "html": document(text_block(REPLY_MARKER), html, text_block(footer)) if html else "",
    }
    raw = _compose(config, queue, mid, now, thread, fields)
    return Outgoing(kind, queue.address, (agent.address,), mid, raw, ticket_id or None)


@lru_cache(maxsize=1024)
def _command_address(secret: bytes, agent: str, queue_address: str) -> str:
    """`tokens.command_address`, remembered: the same for every mail of an agent and queue."""
    return tokens.command_address(secret, agent, queue_address)


def _compose(
    config: Config,
    queue: Queue,
    message_id: str,
    now: datetime,
    thread: Thread,
    fields: dict[str, Any],
) -> bytes:
    """`compose` with what every mail of a queue shares: sender, date, host, threading."""
    return compose(
        from_addr=queue.address,
        message_id=message_id,
        date=now,
        hostname=config.main.hostname,
        in_reply_to=thread.in_reply_to,
        references=thread.references,
        **fields,
    )


def agent_only_headers(
    config: Config, queue: Queue, agent: Agent, *, subject: str, message_id: str, now: datetime
) -> list[tuple[str, str]]:
    """The headers of the one agent mail that is not made by `agent_mail`: the `#secret`
    answer, a MIME message that may be encrypted after it is built. It carries
    Auto-Submitted, the loop header and the command address like every agent mail, but
    no reply marker and no token Reply-To: a reply to it, which would quote the decrypted
    content, must never re-enter the mail path, so Reply-To is the agent's own address."""
    command_address = tokens.command_address(config.secret, agent.name, queue.address)
    return [
        ("From", formataddr((header_text(f"{queue.from_name} (mailgate)"), queue.address))),
        ("To", formataddr((header_text(agent.full_name), agent.address))),
        ("Reply-To", agent.address),
        ("Subject", header_text(subject)),
        ("Date", date_header(now)),
        ("Message-ID", message_id),
        ("Auto-Submitted", "auto-generated"),
        (LOOP_HEADER, config.main.hostname),
        ("X-Mailgate-Command-Address", command_address),
    ]
