"""Tickets and what hangs on them (queues, CCs, tags, links); `apply` stores a Decision.

Everything runs on one connection inside the caller's transaction (SQLAlchemy Core).
`apply()` writes everything a Decision implies — ticket, article, blobs, attachments,
thread references, audit event — so a commit makes the change and the mail it causes
(queued in the same transaction) durable at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ClauseElement,
    Connection,
    Table,
    bindparam,
    case,
    delete,
    insert,
    or_,
    update,
)
from sqlalchemy.sql.dml import Update

from mailgate.agents.reply import new_text as split_new_text
from mailgate.db.models import Ticket, TicketCc, TicketLink, TicketQueue, TicketTag
from mailgate.parse.message import Parsed
from mailgate.pipeline.decide import Decision
from mailgate.store import fast
from mailgate.store.articles import add_article, add_attachments, find_duplicate, put_blob
from mailgate.store.audit import audit
from mailgate.store.batch import (
    ON_CONN,
    BatchState,
    GivenState,
    TicketState,
    current,
    settle_before_storing,
)
from mailgate.store.ids import new_id
from mailgate.store.rule_hits import record_hits
from mailgate.store.sql import insert_ignore, insert_ignore_stmt

tickets: Table = Ticket.__table__  # type: ignore[assignment]
ticket_queues: Table = TicketQueue.__table__  # type: ignore[assignment]
ticket_ccs: Table = TicketCc.__table__  # type: ignore[assignment]
ticket_links: Table = TicketLink.__table__  # type: ignore[assignment]
ticket_tags: Table = TicketTag.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Applied:
    ticket_id: int
    article_id: int | None  # None: the message was already stored (duplicate delivery)
    created: bool


_INSERT_TICKET = insert(tickets).returning(tickets.c.id)
_HELD_TICKET = insert(tickets)
# a held ticket's row has every column, so any later change of it in the batch folds in
_UNSET = {"first_response_at": None, "last_answer_at": None, "resolved_at": None, "closed_at": None}


def insert_ticket(
    conn: Connection,
    *,
    title: str,
    requester_addr: str,
    requester_name: str,
    queues: Iterable[str],  # the first is the ticket's queue
    type: str,  # email | agent
    priority: int,
    now: datetime,
    last_customer_at: datetime | None = None,
    state: GivenState = ON_CONN,
) -> int:
    """A new ticket (status new, tier L1, unassigned) in its queues; its id."""
    queues = list(dict.fromkeys(queues))
    batch: BatchState | None = current(conn) if state is ON_CONN else state
    # held to the batch's flush with an id of the batch's (store/ids.py), the row made once
    head = {"id": new_id(conn, batch, "tickets")} if batch is not None else {}
    later = batch is not None and batch.index_later("tickets")
    if later:
        head["search_pending"] = True
    row = {
        **head,
        "title": title,
        "requester_addr": requester_addr,
        "requester_name": requester_name,
        "queue": queues[0],
        "status": "new",
        "type": type,
        "priority": priority,
        "sticky": False,
        "assignee": None,
        "tier": "L1",
        "category": "",
        "complexity": "",
        "created_at": now,
        "updated_at": now,
        "last_customer_at": last_customer_at,
    }
    if batch is None:
        tid = int(fast.scalar(conn, _INSERT_TICKET, row))
    else:
        tid = row["id"]
        row.update(_UNSET)
        if not later:
            row["search_pending"] = False
        batch.new_rows[tid] = row
        batch.hold("tickets", _HELD_TICKET, row)
        batch.tickets[tid] = TicketState(requester_addr, "new", queues[0], None, set())
        batch.new_tickets.add(tid)  # the governor's windows need not look for its sends
    add_queues(conn, tid, queues, state=batch)
    return tid


def update_ticket(
    conn: Connection, ticket_id: int, values: Mapping[str, Any], *, state: GivenState = ON_CONN
) -> None:
    batch: BatchState | None = current(conn) if state is ON_CONN else state
    row = batch.new_rows.get(ticket_id) if batch is not None else None
    if row is not None and not any(isinstance(v, ClauseElement) for v in values.values()):
        row.update(values)  # a ticket the batch created: its held INSERT has the values
        _known_change(batch, ticket_id, values)  # type: ignore[arg-type]
        return
    conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(**values))


def _known_change(batch: BatchState, ticket_id: int, values: Mapping[str, Any]) -> None:
    t = batch.tickets[ticket_id]
    t.status = values.get("status", t.status)
    t.closed_at = values.get("closed_at", t.closed_at)
    t.queue = values.get("queue", t.queue)


def _hold_rows(
    conn: Connection, batch: BatchState | None, table: Table, rows: list[dict[str, Any]]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING rows held to the batch's flush (nothing in the
    batch reads `table` but through the state); False outside a batch."""
    if batch is None:
        return False
    stmt = insert_ignore_stmt(conn.dialect.name, table)
    for row in rows:
        batch.hold(table.name, stmt, row)
    return True


def add_queues(
    conn: Connection, ticket_id: int, queues: Iterable[str], *, state: GivenState = ON_CONN
) -> None:
    rows = [{"ticket_id": ticket_id, "queue": q} for q in queues]
    batch: BatchState | None = current(conn) if state is ON_CONN else state
    if not _hold_rows(conn, batch, ticket_queues, rows):
        insert_ignore(conn, ticket_queues, rows, count=False)


def add_to_queue(conn: Connection, ticket_ids: Iterable[int], queue: str) -> None:
    """Make every one of these tickets visible in `queue` too (escalation into a queue)."""
    insert_ignore(conn, ticket_queues, [{"ticket_id": i, "queue": queue} for i in ticket_ids])


def add_ccs(
    conn: Connection, ticket_id: int, addresses: Iterable[str], *, state: GivenState = ON_CONN
) -> None:
    rows = [{"ticket_id": ticket_id, "address": a} for a in addresses]
    batch: BatchState | None = current(conn) if state is ON_CONN else state
    t = batch.tracked(ticket_id) if batch is not None else None
    if t is not None:  # the thread facts read CCs: held only where the state knows them
        t.ccs.update(r["address"] for r in rows)
        _hold_rows(conn, batch, ticket_ccs, rows)
        return
    insert_ignore(conn, ticket_ccs, rows, count=False)


def remove_ccs(conn: Connection, ticket_id: int, addresses: Iterable[str]) -> None:
    c = ticket_ccs.c
    conn.execute(delete(ticket_ccs).where(c.ticket_id == ticket_id, c.address.in_(addresses)))


def add_tags(
    conn: Connection, ticket_id: int, tags: Iterable[str], *, state: GivenState = ON_CONN
) -> None:
    rows = [{"ticket_id": ticket_id, "tag": t} for t in tags]
    batch: BatchState | None = current(conn) if state is ON_CONN else state
    if not _hold_rows(conn, batch, ticket_tags, rows):
        insert_ignore(conn, ticket_tags, rows, count=False)


def remove_tags(conn: Connection, ticket_id: int, tags: Iterable[str]) -> None:
    c = ticket_tags.c
    conn.execute(delete(ticket_tags).where(c.ticket_id == ticket_id, c.tag.in_(tags)))


def _create_ticket(conn: Connection, batch: BatchState | None, d: Decision, now: datetime) -> int:
    t = d.new_ticket
    assert t is not None
    tid = insert_ticket(
        conn,
        title=t.title,
        requester_addr=t.requester_addr,
        requester_name=t.requester_name,
        queues=(t.queue, *d.queues),
        type="email",
        priority=t.priority,
        now=now,
        last_customer_at=now if d.customer_activity else None,
        state=batch,
    )
    if t.ccs:
        add_ccs(conn, tid, t.ccs, state=batch)
    _routed(conn, batch, tid, d, now)
    if t.linked_to:
        link = {"ticket_id": tid, "linked_id": t.linked_to, "reason": t.link_reason[:200]}
        if batch is not None:
            batch.hold("ticket_links", _LINK, link)
        else:
            conn.execute(_LINK, link)
        audit(conn, t.linked_to, "mailgate", "linked", now, ticket=tid, reason=t.link_reason)
    audit(conn, tid, t.requester_addr or "unknown", "created", now, queues=list(d.queues))
    return tid


_LINK = insert(ticket_links)


def _routed(
    conn: Connection, batch: BatchState | None, tid: int, d: Decision, now: datetime
) -> None:
    """What the routing rules set on a new ticket, and which rules matched (audited)."""
    t = d.new_ticket
    assert t is not None
    values = {k: v for k, v in (("category", t.category), ("complexity", t.complexity)) if v}
    if t.assignee:
        values.update(assignee=t.assignee, status="open")  # as #assign on a new ticket
    if values:
        update_ticket(conn, tid, values, state=batch)
    if t.tags:
        add_tags(conn, tid, t.tags, state=batch)
    if t.rule_hits:
        record_hits(conn, tid, t.rule_hits)
        audit(
            conn, tid, "mailgate", "routed", now, rules=[h.rule for h in t.rule_hits], queue=t.queue
        )


def _customer_wrote(**values: Any) -> Update:
    """A customer's mail on a ticket: touched, and unassigned unless sticky (H-Sphere)."""
    return (
        update(tickets)
        .where(tickets.c.id == bindparam("tid"))
        .values(
            updated_at=bindparam("now"),
            last_customer_at=bindparam("now"),
            assignee=case((tickets.c.sticky, tickets.c.assignee), else_=None),
            **values,
        )
    )


# a customer's reply puts these back to "open" (the SQL below, and a held ticket's state)
_BACK_TO_OPEN = ("answered", "on-hold", "resolved")
_CUSTOMER_REPLY = _customer_wrote(
    status=case(
        # OR, not IN: a literal IN list is expanded per call, this is fixed SQL (store/fast.py)
        (or_(*(tickets.c.status == s for s in _BACK_TO_OPEN)), "open"),
        else_=tickets.c.status,
    )
)
_REOPEN = _customer_wrote(status="reopened", closed_at=None, resolved_at=None)
_TOUCH = update(tickets).where(tickets.c.id == bindparam("tid")).values(updated_at=bindparam("now"))


def _customer_follow_up(
    conn: Connection, batch: BatchState | None, d: Decision, primary_queue: str, now: datetime
) -> None:
    tid = d.ticket_id
    assert tid is not None
    if not d.customer_activity:
        stmt = _TOUCH  # automatic mail is kept but changes no state
    elif d.reopen:
        stmt = _REOPEN
        audit(conn, tid, "mailgate", "reopened", now)
    else:
        stmt = _CUSTOMER_REPLY
    if batch is None or not _held_follow_up(batch, tid, stmt, now):
        fast.write(conn, stmt, {"tid": tid, "now": now})
    if d.queues != (primary_queue,):
        add_queues(conn, tid, d.queues, state=batch)
    if d.new_ccs:
        add_ccs(conn, tid, d.new_ccs, state=batch)


def _held_follow_up(batch: BatchState, tid: int, stmt: Update, now: datetime) -> bool:
    """The follow-up's change of the ticket held to the flush, its facts kept in the state
    as the statement will leave them (folded into the INSERT of a ticket the batch made);
    False when the state does not know the ticket."""
    t = batch.tracked(tid)
    if t is None:
        return False
    row = batch.new_rows.get(tid)
    change: dict[str, Any] = {"updated_at": now}
    if stmt is not _TOUCH:
        change["last_customer_at"] = now
        if row is not None and not row["sticky"]:
            change["assignee"] = None
        if stmt is _REOPEN:
            change.update(status="reopened", closed_at=None, resolved_at=None)
        elif t.status in _BACK_TO_OPEN:
            change["status"] = "open"
    t.status = change.get("status", t.status)
    t.closed_at = change.get("closed_at", t.closed_at)
    if row is not None:
        row.update(change)
    else:
        batch.hold("tickets", stmt, {"tid": tid, "now": now})
    return True


def _stored_on(
    batch: BatchState, d: Decision, dup: int | None
) -> tuple[int | None, tuple[str, ...] | None]:
    """The ticket the mail is stored on and the requesters whose tickets it changes (None:
    not known) for `settle_before_storing`: a duplicate adds a queue to its ticket only."""
    if dup is not None:
        return dup, ()
    if d.action == "new":
        assert d.new_ticket is not None
        return None, (d.new_ticket.requester_addr,)
    assert d.ticket_id is not None
    requester = batch.requester_of(d.ticket_id)
    return d.ticket_id, None if requester is None else (requester,)


def apply(
    conn: Connection,
    d: Decision,
    p: Parsed,
    raw: bytes,
    now: datetime,
    ticket_queue: str = "",
    new_text: str | None = None,  # reply.new_text(p.text) when known (computed ahead)
) -> Applied:
    """Store the message as an article on a new or existing ticket."""
    batch = current(conn)  # once: every writer below is given it
    dup = find_duplicate(conn, d.dedupe_key, state=batch)
    if batch is not None and batch.notices is not None:
        settle_before_storing(conn, batch, *_stored_on(batch, d, dup))
    if dup is not None:
        add_queues(conn, dup, d.queues, state=batch)
        return Applied(dup, None, False)
    if d.action == "new":
        tid = _create_ticket(conn, batch, d, now)
    else:
        assert d.ticket_id is not None
        tid = d.ticket_id
        _customer_follow_up(conn, batch, d, ticket_queue, now)
    put_blob(conn, p.raw_sha256, raw, state=batch)
    aid = add_article(
        conn,
        ticket_id=tid,
        kind="inbound",
        body=p.text,
        new_text=split_new_text(p.text) if new_text is None else new_text,
        now=now,
        dedupe_key=d.dedupe_key,
        message_id=p.message_id,
        raw_sha256=p.raw_sha256,
        from_addr=p.from_addr,
        from_name=p.from_name,
        to=p.to,
        cc=p.cc,
        subject=p.subject,
        auto=not d.customer_activity,
        verdict={"reasons": list(d.reasons), **({"auth": d.auth} if d.auth else {})},
        defects=p.defects,
        state=batch,
    )
    add_attachments(conn, aid, p.attachments, agent_only=False, state=batch)
    return Applied(tid, aid, d.action == "new")
