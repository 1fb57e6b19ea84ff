"""Database operations on one connection inside the caller's transaction (SQLAlchemy Core).

`apply()` writes everything a Decision implies — ticket, article, blobs, attachments,
thread references, audit event — in the caller's transaction; outbox rows are added in
the same transaction, so a commit makes the change and the mail it causes durable at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mailgate.compose import Outgoing
from mailgate.decide import Decision
from mailgate.models import (
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
from mailgate.parse import Parsed
from mailgate.thread import ThreadLookups, TicketFacts, referenced_ids, tag_number

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


def insert_ignore(
    conn: Connection, table: Table, rows: list[dict[str, Any]] | dict[str, Any]
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL."""
    if not rows:
        return
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(ins(table).on_conflict_do_nothing(), rows)


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
def find_duplicate(conn: Connection, key: str) -> int | None:
    """The ticket that already holds this message, if any."""
    return conn.execute(select(articles.c.ticket_id).where(articles.c.dedupe_key == key)).scalar()


def ticket_facts(conn: Connection, ids: Iterable[int]) -> dict[int, TicketFacts]:
    ids = list(dict.fromkeys(ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(
            tickets.c.id,
            tickets.c.requester_addr,
            tickets.c.status,
            tickets.c.queue,
            tickets.c.closed_at,
        ).where(tickets.c.id.in_(ids))
    ).all()
    ccs: dict[int, set[str]] = {}
    for tid, addr in conn.execute(
        select(ticket_ccs.c.ticket_id, ticket_ccs.c.address).where(ticket_ccs.c.ticket_id.in_(ids))
    ):
        ccs.setdefault(tid, set()).add(addr)
    return {
        r.id: TicketFacts(
            id=r.id,
            requester=r.requester_addr,
            ccs=frozenset(ccs.get(r.id, ())),
            status=r.status,
            queue=r.queue,
            closed_at=r.closed_at,
        )
        for r in rows
    }


def thread_lookups(conn: Connection, p: Parsed) -> ThreadLookups:
    tag = tag_number(p.subject)
    # its own Message-ID first: a known id re-sent with other content joins that ticket
    refs = referenced_ids((p.message_id, *p.in_reply_to), p.references)
    ref_tickets: list[int] = []
    if refs:
        found = dict(
            conn.execute(
                select(thread_refs.c.message_id, thread_refs.c.ticket_id).where(
                    thread_refs.c.message_id.in_(refs[:100])
                )
            ).all()
        )
        ref_tickets = [found[m] for m in refs if m in found]
    facts = ticket_facts(conn, ([tag] if tag else []) + ref_tickets)
    return ThreadLookups(
        tagged=facts.get(tag) if tag else None,
        referenced=tuple(facts[t] for t in dict.fromkeys(ref_tickets) if t in facts),
    )


def last_autoresponse(conn: Connection, queue: str, sender: str) -> datetime | None:
    return conn.execute(
        select(autoresponse_log.c.last_sent_at).where(
            autoresponse_log.c.queue == queue, autoresponse_log.c.sender == sender
        )
    ).scalar()


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


def _customer_follow_up(conn: Connection, d: Decision, now: datetime) -> None:
    tid = d.ticket_id
    values: dict[str, Any] = {"updated_at": now}
    if d.customer_activity:
        values["last_customer_at"] = now
        # H-Sphere: a customer reply makes a ticket unassigned unless it is sticky
        conn.execute(
            update(tickets)
            .where(tickets.c.id == tid, tickets.c.sticky.is_(False))
            .values(assignee=None)
        )
        if d.reopen:
            values.update(status="reopened", closed_at=None, resolved_at=None)
            audit(conn, tid, "mailgate", "reopened", now)
        else:
            conn.execute(
                update(tickets)
                .where(
                    tickets.c.id == tid, tickets.c.status.in_(("answered", "on-hold", "resolved"))
                )
                .values(status="open")
            )
    conn.execute(update(tickets).where(tickets.c.id == tid).values(**values))
    add_queues(conn, tid, d.queues)


def apply(conn: Connection, d: Decision, p: Parsed, raw: bytes, now: datetime) -> Applied:
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
        _customer_follow_up(conn, d, now)
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
    exists = conn.execute(select(outbox.c.id).where(outbox.c.message_id == out.message_id)).first()
    if exists:
        return False
    conn.execute(
        insert(outbox),
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
    if out.ticket_id is not None:
        insert_ignore(conn, thread_refs, {"message_id": out.message_id, "ticket_id": out.ticket_id})
    return True


def record_autoresponse(conn: Connection, queue: str, sender: str, now: datetime) -> None:
    res = conn.execute(
        update(autoresponse_log)
        .where(autoresponse_log.c.queue == queue, autoresponse_log.c.sender == sender)
        .values(last_sent_at=now, count=autoresponse_log.c.count + 1)
    )
    if res.rowcount == 0:
        conn.execute(
            insert(autoresponse_log), {"queue": queue, "sender": sender, "last_sent_at": now}
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
