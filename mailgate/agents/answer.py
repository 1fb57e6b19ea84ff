"""An agent's answer to the customer: threaded under the customer's last mail, stored as
the ticket's outbound article, audited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select

from mailgate.config.model import Config, Queue
from mailgate.config.schema import Agent
from mailgate.outgoing import customer_mails
from mailgate.outgoing.builders import Thread
from mailgate.outgoing.compose import OutAttachment, Outgoing, reply_subject
from mailgate.store.articles import articles

_KNOWN_REFERENCES = 20


def answer_thread(conn: Connection, ticket_id: int) -> tuple[Thread, str | None]:
    """Where the answer threads, and the subject of the customer's last mail (None: none)."""
    a = articles.c
    last = conn.execute(
        select(a.message_id, a.subject)
        .where(
            a.ticket_id == ticket_id,
            a.kind == "inbound",
            a.auto.is_(False),
            a.message_id != "",
        )
        .order_by(a.id.desc())
        .limit(1)
    ).first()
    known = conn.execute(
        select(a.message_id)
        .where(
            a.ticket_id == ticket_id,
            a.kind.in_(("inbound", "outbound")),
            a.message_id != "",
        )
        .order_by(a.id.desc())
        .limit(_KNOWN_REFERENCES)
    ).scalars()
    references = [m for m in reversed(list(known)) if not last or m != last.message_id]
    if last is None:
        return Thread("", tuple(references)), None
    return Thread(last.message_id, (*references, last.message_id)), last.subject


def compose_answer(
    conn: Connection,
    config: Config,
    queue: Queue,
    agent: Agent,
    row: Row[Any],
    ccs: tuple[str, ...],
    text: str,
    *,
    cause: str,
    now: datetime,
    attachments: tuple[OutAttachment, ...] = (),
    html: str = "",
    html_signed: bool = False,
) -> tuple[Outgoing, str, str]:
    """The answer mail for the ticket in `row`, its body and its subject (`html`: the
    answer as safe HTML too, customer_mails.answer)."""
    thread, last_subject = answer_thread(conn, row.id)
    basis = row.title if last_subject is None else last_subject
    subject = reply_subject(basis, queue.tag_for(row.id))
    out, body = customer_mails.answer(
        config,
        queue,
        agent,
        ticket_id=row.id,
        requester=(row.requester_name, row.requester_addr),
        ccs=ccs,
        subject=subject,
        text=text,
        thread=thread,
        cause=cause,
        now=now,
        attachments=attachments,
        html=html,
        html_signed=html_signed,
    )
    return out, body, subject
