"""Reads the worker threads a message by: the tickets its subject tag and references name."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Select, select

from mailgate.parse.message import Parsed
from mailgate.pipeline.thread import ThreadLookups, TicketFacts, message_refs, tag_number
from mailgate.store import fast
from mailgate.store.articles import thread_refs
from mailgate.store.batch import BatchState, TicketState, current
from mailgate.store.tickets import ticket_ccs, tickets


@functools.cache
def _facts(n: int) -> Select[Any]:
    """The facts of `n` tickets (store/fast.rows_in); in a batch, of tickets with no rows
    held (the others' are the state's)."""
    stmt = (
        select(
            tickets.c.id,
            tickets.c.requester_addr,
            tickets.c.status,
            tickets.c.queue,
            tickets.c.closed_at,
            ticket_ccs.c.address,
        )
        .select_from(tickets.outerjoin(ticket_ccs, ticket_ccs.c.ticket_id == tickets.c.id))
        .where(tickets.c.id.in_(fast.in_binds(n)))
    )
    fast.SEES_BATCH.add(stmt)
    return stmt


def ticket_facts(conn: Connection, ids: Iterable[int]) -> dict[int, TicketFacts]:
    ids = list(dict.fromkeys(ids))
    if not ids:
        return {}
    batch = current(conn)
    known = {} if batch is None else {i: batch.tickets[i] for i in ids if i in batch.tickets}
    found: dict[int, TicketState] = {}
    for tid, requester, status, queue, closed_at, address in fast.rows_in(
        conn, _facts, [i for i in ids if i not in known]
    ):
        t = found.setdefault(tid, TicketState(requester, status, queue, closed_at, set()))
        if address:
            t.ccs.add(address)
    if batch is not None:  # a follow-up's change of it is then held (store/tickets.py)
        batch.read_facts.update(found)
    return {
        tid: TicketFacts(
            id=tid,
            requester=t.requester,
            ccs=frozenset(t.ccs),
            status=t.status,
            queue=t.queue,
            closed_at=t.closed_at,
        )
        for tid, t in (*found.items(), *known.items())
    }


@functools.cache
def _refs(n: int) -> Select[Any]:
    c = thread_refs.c
    return select(c.message_id, c.ticket_id).where(c.message_id.in_(fast.in_binds(n)))


def read_refs(conn: Connection, batch: BatchState, mids: list[str]) -> None:
    """Which tickets a batch's Message-IDs belong to: one statement for the whole batch."""
    mids = [m for m in dict.fromkeys(mids) if not batch.known_ref(m)]
    batch.refs.update(fast.rows_in(conn, _refs, mids))
    batch.refs_absent.update(m for m in mids if m not in batch.refs)


def _ref_tickets(conn: Connection, refs: list[str]) -> dict[str, int]:
    batch = current(conn)
    if batch is None:
        return dict(fast.rows_in(conn, _refs, refs))
    read_refs(conn, batch, refs)  # reads only what the batch did not read ahead
    return {m: batch.refs[m] for m in refs if m in batch.refs}


def thread_lookups(conn: Connection, p: Parsed) -> ThreadLookups:
    tag = tag_number(p.subject)
    refs = message_refs(p)
    ref_tickets: list[int] = []
    if refs:
        found = _ref_tickets(conn, refs)
        ref_tickets = [found[m] for m in refs if m in found]
    facts = ticket_facts(conn, ([tag] if tag else []) + ref_tickets)
    return ThreadLookups(
        tagged=facts.get(tag) if tag else None,
        referenced=tuple(facts[t] for t in dict.fromkeys(ref_tickets) if t in facts),
    )
