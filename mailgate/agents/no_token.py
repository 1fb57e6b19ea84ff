"""An agent's mail to a queue address without a valid reply token (replying to the
visible From instead of the Reply-To, say).

About a known ticket (subject tag or references) it is never a customer reply and never
announced as one: it is kept on the ticket as an internal note, cleaned like a refused
command mail (the raw stays for admins), and the agent is told, at most once an hour,
that nothing was applied and how to answer. About no known ticket it stays ordinary mail
(an agent may open a ticket by writing to a queue like anyone): `handle_without_token`
returns None. Automatic mail (an agent's out-of-office reply) is left to the customer
path, which stores it inert.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Connection

from mailgate.agents import auth
from mailgate.agents.reply import cleaned_note
from mailgate.config.model import Config
from mailgate.outgoing import agent_mails
from mailgate.parse.message import Parsed
from mailgate.pipeline.classify import classify
from mailgate.pipeline.digests import dedupe_key
from mailgate.store import agent_mails as seen
from mailgate.store.articles import add_article, put_blob
from mailgate.store.audit import audit
from mailgate.store.lookups import thread_lookups
from mailgate.store.outbox import queue_mails

log = logging.getLogger(__name__)

NOTICE_EVERY = timedelta(hours=1)
NOTICED = "no-token-noticed"


def handle_without_token(
    conn: Connection, config: Config, p: Parsed, raw: bytes, now: datetime
) -> tuple[int, int | None, str] | None:
    """(ticket, note article, action) when this is an agent's token-less mail about a
    known ticket; None otherwise (the customer path takes it)."""
    agent = config.agent_by_address(p.from_addr) if p.from_addr else None
    if agent is None:
        return None
    verdict = classify(p, config.our_addresses, config.main.hostname)
    if verdict.automatic or verdict.bulk:
        return None
    lookups = thread_lookups(conn, p)
    ticket = lookups.tagged or (lookups.referenced[0] if lookups.referenced else None)
    if ticket is None:
        return None
    key = auth.message_key(p)
    if seen.seen_message(conn, key):
        return ticket.id, None, "duplicate"
    put_blob(conn, p.raw_sha256, raw)
    aid = add_article(
        conn,
        ticket_id=ticket.id,
        kind="note",
        body=cleaned_note(p.text, agent.signature),
        now=now,
        dedupe_key=dedupe_key(p, raw),
        raw_sha256=p.raw_sha256,
        from_addr=agent.address,
        from_name=agent.full_name,
        subject=p.subject,
        author=agent.name,
        verdict={"agent_mail": "no-token", "reasons": ["no valid reply token in a recipient"]},
        defects=p.defects,
    )
    notify = not seen.recent_outcome(conn, agent.name, NOTICED, now - NOTICE_EVERY)
    seen.record_agent_mail(
        conn,
        message_key=key,
        content_key=None,
        message_id=p.message_id,
        agent=agent.name,
        ticket_id=ticket.id,
        now=now,
        outcome=NOTICED if notify else "no-token",
        raw_sha256=p.raw_sha256,
        detail={},
    )
    audit(conn, ticket.id, agent.name, "agent-mail-without-token", now, noticed=notify)
    if notify:
        queue = config.queue(ticket.queue) or config.queues[0]
        notice = agent_mails.no_token_notice(
            config,
            queue,
            agent,
            ticket_id=ticket.id,
            subject=p.subject,
            in_reply_to=p.message_id,
            cause=key,
            now=now,
        )
        queue_mails(conn, [notice], now, config.relay.give_up_after_hours)
    log.info("agent %s: mail without a reply token kept on #%d as a note", agent.name, ticket.id)
    return ticket.id, aid, "agent-no-token"
