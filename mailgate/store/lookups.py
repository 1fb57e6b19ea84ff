"""Reads the worker threads a message by: the tickets its subject tag and references name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, select

from mailgate.parse.message import Parsed
from mailgate.pipeline.thread import ThreadLookups, TicketFacts, referenced_ids, tag_number
from mailgate.store.articles import thread_refs
from mailgate.store.tickets import ticket_ccs, tickets

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
