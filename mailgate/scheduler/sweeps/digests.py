"""The per-agent digest: notifications the governor held go out as one mail.

Once `[governor] notify_per_agent_ticket_hour` holds an agent's notifications about a
ticket, they wait (held, listed by `mailgate outbox list --held`) until the oldest of them
has waited `digest_after_minutes` (by default the cap's hour). Then this sweep queues ONE
digest to the agent listing them, with the ticket's system notes since the agent's last
mail about it (delivery failures, bounces, loop notes), and marks them `digested`: kept,
never sent on their own. The digest's Message-ID comes from the first row it covers, so a
second run or a second daemon queues nothing twice; more notifications held after it wait
for the next window: at most one digest per agent, ticket and window.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from sqlalchemy import Connection, Row, func, select, update

from mailgate.agents.queries import ticket_digest, ticket_row
from mailgate.config.model import Config
from mailgate.outgoing import agent_mails
from mailgate.outgoing import digest as dg
from mailgate.store.articles import articles
from mailgate.store.outbox import add_outbox, outbox, outbox_deadline
from mailgate.store.send_log import NOT_SENDING, send_log

log = logging.getLogger(__name__)

CAP = "notify_per_agent_ticket_hour"
HELD_BY_CAP = f"held by governor.{CAP}%"
MAX_NOTES = 20
_EVENTS = {
    "notify-new_ticket": "New",
    "notify-customer_reply": "Customer reply",
    "notify-assigned": "Assigned",
    "notify-escalated": "Escalated",
}


def sweep_digests(conn: Connection, config: Config, now: datetime) -> int:
    """Queue the digests that are due; the number of tickets that got one."""
    caps = config.governor
    if not caps.enabled or not caps.digest:
        return 0
    o = outbox.c
    held = conn.execute(
        select(o.id, o.ticket_id, o.rcpt_tos, o.kind, o.created_at, o.raw)
        .where(
            o.status == "held",
            o.kind.like("notify-%"),
            o.ticket_id.is_not(None),
            o.last_error.like(HELD_BY_CAP),
        )
        .order_by(o.id)
    ).all()
    groups: dict[tuple[int, str], list[Row]] = defaultdict(list)
    for r in held:
        groups[(r.ticket_id, r.rcpt_tos[0].lower())].append(r)
    due = now - timedelta(minutes=caps.digest_after_minutes)
    sent = 0
    for (ticket_id, address), rows in groups.items():
        if rows[0].created_at > due:
            continue
        sent += _digest(conn, config, ticket_id, address, rows, now)
    return sent


def _digest(
    conn: Connection, config: Config, ticket_id: int, address: str, rows: list[Row], now: datetime
) -> int:
    agent = config.agent_by_address(address)
    ticket = ticket_row(conn, ticket_id)
    queue = config.queue(ticket.queue) if ticket is not None else None
    if agent is None or ticket is None or queue is None:
        return 0  # no longer an agent or a queue: the rows stay held, visible
    notices = tuple(
        dg.HeldNotice(dg.when(r.created_at), _EVENTS.get(r.kind, r.kind), _subject(r.raw))
        for r in rows
    )
    notes = _system_notes(conn, ticket_id, _last_mail(conn, address, ticket_id, rows[0]))
    mail = agent_mails.digest_mail(
        config,
        queue,
        agent,
        ticket_digest(conn, config, ticket),
        held=notices,
        notes=notes,
        cause=str(rows[0].id),
        now=now,
    )
    deadline = outbox_deadline(now, config.relay.give_up_after_hours)
    add_outbox(conn, mail, now, deadline, config.governor, queue.name)
    conn.execute(
        update(outbox)
        .where(outbox.c.id.in_([r.id for r in rows]), outbox.c.status == "held")
        .values(status="digested", last_error=f"sent in digest {mail.message_id}")
    )
    log.info("digest %s to %s: %d held notification(s)", mail.message_id, address, len(rows))
    return 1


def _subject(raw: bytes) -> str:
    head = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    return str(head.get("Subject", ""))


def _last_mail(conn: Connection, address: str, ticket_id: int, first: Row) -> datetime | None:
    """When the agent was last sent mail about the ticket before the held ones."""
    s, o = send_log.c, outbox.c
    return conn.execute(
        select(func.max(s.created_at))
        .select_from(send_log.join(outbox, o.id == s.outbox_id))
        .where(
            s.address == address,
            s.ticket_id == ticket_id,
            o.id < first.id,
            o.status.not_in(NOT_SENDING),
        )
    ).scalar()


def _system_notes(
    conn: Connection, ticket_id: int, since: datetime | None
) -> tuple[dg.ArticleSummary, ...]:
    a = articles.c
    where = [a.ticket_id == ticket_id, a.kind == "system"]
    if since is not None:
        where.append(a.created_at >= since)
    found = conn.execute(
        select(a.created_at, a.body_text).where(*where).order_by(a.id.desc()).limit(MAX_NOTES)
    ).all()
    return tuple(
        dg.ArticleSummary(dg.when(n.created_at), "system", "mailgate", dg.shorten(n.body_text))
        for n in reversed(found)
    )
