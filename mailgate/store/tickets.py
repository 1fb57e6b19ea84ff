"""Database operations on one connection inside the caller's transaction (SQLAlchemy Core).

`apply()` writes everything a Decision implies — ticket, article, blobs, attachments,
thread references, audit event — in the caller's transaction; outbox rows are added in
the same transaction, so a commit makes the change and the mail it causes durable at once.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, bindparam, case, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mailgate.db.models import (
    Article,
    Attachment,
    AuditEvent,
    AutoResponseLog,
    Blob,
    OutboxRow,
    ThreadRef,
    Ticket,
    TicketCc,
    TicketLink,
    TicketQueue,
)
from mailgate.outgoing.compose import Outgoing
from mailgate.parse.message import Parsed
from mailgate.pipeline.decide import Decision
from mailgate.pipeline.thread import ThreadLookups, TicketFacts, referenced_ids, tag_number

tickets: Table = Ticket.__table__  # type: ignore[assignment]
ticket_queues: Table = TicketQueue.__table__  # type: ignore[assignment]
ticket_ccs: Table = TicketCc.__table__  # type: ignore[assignment]
ticket_links: Table = TicketLink.__table__  # type: ignore[assignment]
articles: Table = Article.__table__  # type: ignore[assignment]
attachments: Table = Attachment.__table__  # type: ignore[assignment]
blobs: Table = Blob.__table__  # type: ignore[assignment]
thread_refs: Table = ThreadRef.__table__  # type: ignore[assignment]
audit_events: Table = AuditEvent.__table__  # type: ignore[assignment]
outbox: Table = OutboxRow.__table__  # type: ignore[assignment]
autoresponse_log: Table = AutoResponseLog.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Applied:
    ticket_id: int
    article_id: int | None  # None: the message was already stored (duplicate delivery)
    created: bool


@functools.cache
def _insert_ignore_stmt(dialect: str, table: Table) -> Any:
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    return ins(table).on_conflict_do_nothing()


def insert_ignore(
    conn: Connection, table: Table, rows: list[dict[str, Any]] | dict[str, Any]
) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL; returns the result."""
    if not rows:
        return None
    return conn.execute(_insert_ignore_stmt(conn.dialect.name, table), rows)


def put_blob(conn: Connection, sha256: str, data: bytes) -> None:
    insert_ignore(conn, blobs, {"sha256": sha256, "size": len(data), "data": data})


def audit(
    conn: Connection, ticket_id: int | None, actor: str, action: str, now: datetime, **detail: Any
) -> None:
    conn.execute(
        insert(audit_events),
        {"ticket_id": ticket_id, "at": now, "actor": actor, "action": action, "detail": detail},
    )


# -- lookups ------------------------------------------------------------------------------
_DUPLICATE = select(articles.c.ticket_id).where(articles.c.dedupe_key == bindparam("key"))


def find_duplicate(conn: Connection, key: str) -> int | None:
    """The ticket that already holds this message, if any."""
    return conn.execute(_DUPLICATE, {"key": key}).scalar()


_FACTS = (
    select(
        tickets.c.id,
        tickets.c.requester_addr,
        tickets.c.status,
        tickets.c.queue,
        tickets.c.closed_at,
        ticket_ccs.c.address,
    )
    .select_from(tickets.outerjoin(ticket_ccs, ticket_ccs.c.ticket_id == tickets.c.id))
    .where(tickets.c.id.in_(bindparam("ids", expanding=True)))
)


def ticket_facts(conn: Connection, ids: Iterable[int]) -> dict[int, TicketFacts]:
    ids = list(dict.fromkeys(ids))
    if not ids:
        return {}
    rows: dict[int, Any] = {}
    ccs: dict[int, set[str]] = {}
    for r in conn.execute(_FACTS, {"ids": ids}):
        rows[r.id] = r
        if r.address:
            ccs.setdefault(r.id, set()).add(r.address)
    return {
        tid: TicketFacts(
            id=tid,
            requester=r.requester_addr,
            ccs=frozenset(ccs.get(tid, ())),
            status=r.status,
            queue=r.queue,
            closed_at=r.closed_at,
        )
        for tid, r in rows.items()
    }


_REFS = select(thread_refs.c.message_id, thread_refs.c.ticket_id).where(
    thread_refs.c.message_id.in_(bindparam("mids", expanding=True))
)


def thread_lookups(conn: Connection, p: Parsed) -> ThreadLookups:
    tag = tag_number(p.subject)
    # its own Message-ID first: a known id re-sent with other content joins that ticket
    refs = referenced_ids((p.message_id, *p.in_reply_to), p.references)
    ref_tickets: list[int] = []
    if refs:
        found = dict(conn.execute(_REFS, {"mids": list(refs[:100])}).all())
        ref_tickets = [found[m] for m in refs if m in found]
    facts = ticket_facts(conn, ([tag] if tag else []) + ref_tickets)
    return ThreadLookups(
        tagged=facts.get(tag) if tag else None,
        referenced=tuple(facts[t] for t in dict.fromkeys(ref_tickets) if t in facts),
    )


_LAST_AUTORESPONSE = select(autoresponse_log.c.last_sent_at).where(
    autoresponse_log.c.queue == bindparam("queue"), autoresponse_log.c.sender == bindparam("sender")
)


def last_autoresponse(conn: Connection, queue: str, sender: str) -> datetime | None:
    return conn.execute(_LAST_AUTORESPONSE, {"queue": queue, "sender": sender}).scalar()


# -- writes -------------------------------------------------------------------------------
def add_queues(conn: Connection, ticket_id: int, queues: Iterable[str]) -> None:
    insert_ignore(conn, ticket_queues, [{"ticket_id": ticket_id, "queue": q} for q in queues])


def _create_ticket(conn: Connection, d: Decision, now: datetime) -> int:
    t = d.new_ticket
    assert t is not None
    tid = conn.execute(
        insert(tickets).returning(tickets.c.id),
        {
            "title": t.title,
            "requester_addr": t.requester_addr,
            "requester_name": t.requester_name,
            "queue": t.queue,
            "status": "new",
            "type": "email",
            "priority": t.priority,
            "sticky": False,
            "assignee": None,
            "tier": "L1",
            "category": "",
            "complexity": "",
            "created_at": now,
            "updated_at": now,
            "last_customer_at": now if d.customer_activity else None,
        },
    ).scalar_one()
    add_queues(conn, tid, d.queues)
    if t.ccs:
        insert_ignore(conn, ticket_ccs, [{"ticket_id": tid, "address": a} for a in t.ccs])
    if t.linked_to:
        conn.execute(
            insert(ticket_links),
            {"ticket_id": tid, "linked_id": t.linked_to, "reason": t.link_reason[:200]},
        )
        audit(conn, t.linked_to, "mailgate", "linked", now, ticket=tid, reason=t.link_reason)
    audit(conn, tid, t.requester_addr or "unknown", "created", now, queues=list(d.queues))
    return tid


# H-Sphere: a customer reply makes a ticket unassigned unless it is sticky
_CUSTOMER_REPLY = (
    update(tickets)
    .where(tickets.c.id == bindparam("tid"))
    .values(
        updated_at=bindparam("now"),
        last_customer_at=bindparam("now"),
        assignee=case((tickets.c.sticky, tickets.c.assignee), else_=None),
        status=case(
            (tickets.c.status.in_(("answered", "on-hold", "resolved")), "open"),
            else_=tickets.c.status,
        ),
    )
)
_REOPEN = (
    update(tickets)
    .where(tickets.c.id == bindparam("tid"))
    .values(
        updated_at=bindparam("now"),
        last_customer_at=bindparam("now"),
        assignee=case((tickets.c.sticky, tickets.c.assignee), else_=None),
        status="reopened",
        closed_at=None,
        resolved_at=None,
    )
)
_TOUCH = update(tickets).where(tickets.c.id == bindparam("tid")).values(updated_at=bindparam("now"))


def _customer_follow_up(conn: Connection, d: Decision, primary_queue: str, now: datetime) -> None:
    tid = d.ticket_id
    if not d.customer_activity:
        stmt = _TOUCH  # automatic mail is kept but changes no state
    elif d.reopen:
        stmt = _REOPEN
        audit(conn, tid, "mailgate", "reopened", now)
    else:
        stmt = _CUSTOMER_REPLY
    conn.execute(stmt, {"tid": tid, "now": now})
    if d.queues != (primary_queue,):
        add_queues(conn, tid, d.queues)
    if d.new_ccs:
        insert_ignore(conn, ticket_ccs, [{"ticket_id": tid, "address": a} for a in d.new_ccs])


def apply(
    conn: Connection, d: Decision, p: Parsed, raw: bytes, now: datetime, ticket_queue: str = ""
) -> Applied:
    """Store the message as an article on a new or existing ticket."""
    dup = find_duplicate(conn, d.dedupe_key)
    if dup is not None:
        add_queues(conn, dup, d.queues)
        return Applied(dup, None, False)
    if d.action == "new":
        tid = _create_ticket(conn, d, now)
    else:
        assert d.ticket_id is not None
        tid = d.ticket_id
        _customer_follow_up(conn, d, ticket_queue, now)
    put_blob(conn, p.raw_sha256, raw)
    aid = conn.execute(
        insert(articles).returning(articles.c.id),
        {
            "ticket_id": tid,
            "kind": "inbound",
            "dedupe_key": d.dedupe_key,
            "message_id": p.message_id[:998],
            "raw_sha256": p.raw_sha256,
            "from_addr": p.from_addr[:320],
            "from_name": p.from_name[:200],
            "to_addrs": list(p.to),
            "cc_addrs": list(p.cc),
            "subject": p.subject,
            "body_text": p.text,
            "author": "",
            "auto": not d.customer_activity,
            "verdict": {"reasons": list(d.reasons)},
            "defects": list(p.defects),
            "created_at": now,
        },
    ).scalar_one()
    if p.attachments:
        for a in p.attachments:
            put_blob(conn, a.sha256, a.data)
        conn.execute(
            insert(attachments),
            [
                {
                    "article_id": aid,
                    "blob_sha256": a.sha256,
                    "filename": a.filename,
                    "content_type": a.content_type[:255],
                    "inline": a.inline,
                    "agent_only": False,
                }
                for a in p.attachments
            ],
        )
    if p.message_id:
        insert_ignore(conn, thread_refs, {"message_id": p.message_id[:998], "ticket_id": tid})
    return Applied(tid, aid, d.action == "new")


def add_outbox(conn: Connection, out: Outgoing, now: datetime, deadline: datetime) -> bool:
    """Queue a message; False if one with this Message-ID is already queued (idempotent)."""
    res = insert_ignore(
        conn,
        outbox,
        {
            "created_at": now,
            "ticket_id": out.ticket_id,
            "kind": out.kind,
            "mail_from": out.mail_from,
            "rcpt_tos": list(out.rcpt_tos),
            "message_id": out.message_id,
            "raw": out.raw,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "deadline": deadline,
            "last_error": "",
        },
    )
    if res.rowcount == 0:
        return False
    if out.ticket_id is not None:
        insert_ignore(conn, thread_refs, {"message_id": out.message_id, "ticket_id": out.ticket_id})
    return True


@functools.cache
def _autoresponse_upsert(dialect: str) -> Any:
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = ins(autoresponse_log)
    return stmt.on_conflict_do_update(
        index_elements=["queue", "sender"],
        set_={"last_sent_at": stmt.excluded.last_sent_at, "count": autoresponse_log.c.count + 1},
    )


def record_autoresponse(conn: Connection, queue: str, sender: str, now: datetime) -> None:
    conn.execute(
        _autoresponse_upsert(conn.dialect.name),
        {"queue": queue, "sender": sender, "last_sent_at": now, "count": 1},
    )


def system_article(conn: Connection, ticket_id: int, text: str, now: datetime) -> None:
    """A visible note on the ticket written by mailgate itself (e.g. a delivery failure)."""
    conn.execute(
        insert(articles),
        {
            "ticket_id": ticket_id,
            "kind": "system",
            "dedupe_key": None,
            "message_id": "",
            "raw_sha256": None,
            "from_addr": "",
            "from_name": "mailgate",
            "to_addrs": [],
            "cc_addrs": [],
            "subject": "",
            "body_text": text,
            "author": "mailgate",
            "auto": True,
            "verdict": {},
            "defects": [],
            "created_at": now,
        },
    )


def outbox_deadline(now: datetime, hours: float) -> datetime:
    return now + timedelta(hours=hours)
