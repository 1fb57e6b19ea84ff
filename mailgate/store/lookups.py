"""Reads the worker threads a message by: the tickets its subject tag and references name."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, select

from mailgate.parse.message import Parsed
from mailgate.parse.records import frozen_record
from mailgate.pipeline.thread import (
    ThreadChoice,
    ThreadLookups,
    TicketFacts,
    message_refs,
    named_tickets,
    tag_number,
)
from mailgate.store import fast
from mailgate.store.articles import thread_refs
from mailgate.store.batch import BatchState, TicketState, current
from mailgate.store.repeats import REPEATS_WINDOW, read_recent_ahead
from mailgate.store.satisfaction import Survey
from mailgate.store.satisfaction import latest as latest_survey
from mailgate.store.tickets import ticket_ccs, tickets

if TYPE_CHECKING:
    from mailgate.pipeline.prepare import Prepared


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


def _read_facts(conn: Connection, ids: list[int]) -> dict[int, TicketState]:
    """The facts the database holds of these tickets (the missing ones left out)."""
    found: dict[int, TicketState] = {}
    for tid, requester, status, queue, closed_at, address in fast.rows_in(conn, _facts, ids):
        t = found.setdefault(tid, TicketState(requester, status, queue, closed_at, set()))
        if address:
            t.ccs.add(address)
    return found


# where a ticket's facts come from: while facts read ahead are known, any other statement
# on these writes the held rows first, and the state forgets the facts (store/batch.py)
_FACTS_TABLES = ("tickets", "ticket_ccs")


def read_facts_ahead(conn: Connection, batch: BatchState, ids: list[int]) -> None:
    """The facts of the tickets a batch's messages name: one statement for the batch."""
    ids = [i for i in dict.fromkeys(ids) if i not in batch.facts_ahead]
    if not ids:
        return
    found = _read_facts(conn, ids)
    batch.facts_ahead.update({i: found.get(i) for i in ids})
    batch.live.update(_FACTS_TABLES)


def _facts_known(batch: BatchState, ids: list[int]) -> dict[int, TicketState]:
    """The facts the batch knows of these tickets: held, else read ahead (a ticket read
    ahead and not found is left out, as the database would)."""
    known: dict[int, TicketState] = {}
    for i in ids:
        t = batch.tickets.get(i)
        t = batch.facts_ahead.get(i) if t is None else t
        if t is not None:
            known[i] = t
    return known


def ticket_facts(conn: Connection, ids: Iterable[int]) -> dict[int, TicketFacts]:
    ids = list(dict.fromkeys(ids))
    if not ids:
        return {}
    batch = current(conn)
    if batch is None:
        known: dict[int, TicketState] = {}
        found = _read_facts(conn, ids)
    else:
        known = _facts_known(batch, ids)
        missing = [i for i in ids if i not in known and i not in batch.facts_ahead]
        found = _read_facts(conn, missing) if missing else {}
        # a follow-up's change of one read here is then held (store/tickets.py)
        batch.read_facts.update(found)
        batch.read_facts.update((i, t) for i, t in known.items() if i not in batch.tickets)
    return {tid: _ticket_facts(tid, t) for tid, t in (*found.items(), *known.items())}


def _ticket_facts(tid: int, t: TicketState) -> TicketFacts:
    fields = {  # (in TicketFacts' order, every field)
        "id": tid,
        "requester": t.requester,
        "ccs": frozenset(t.ccs),
        "status": t.status,
        "queue": t.queue,
        "closed_at": t.closed_at,
    }
    return frozen_record(TicketFacts, fields)


@functools.cache
def _refs(n: int) -> Select[Any]:
    c = thread_refs.c
    return select(c.message_id, c.ticket_id).where(c.message_id.in_(fast.in_binds(n)))


def read_refs(conn: Connection, batch: BatchState, mids: list[str]) -> None:
    """Which tickets a batch's Message-IDs belong to: one statement for the whole batch."""
    mids = [m for m in dict.fromkeys(mids) if not batch.known_ref(m)]
    if mids:  # a follow-up's were read ahead with the batch's: nothing to read
        batch.refs.update(fast.rows_in(conn, _refs, mids))
        batch.refs_absent.update(m for m in mids if m not in batch.refs)


def _ref_tickets(conn: Connection, refs: list[str]) -> dict[str, int]:
    batch = current(conn)
    if batch is None:
        return dict(fast.rows_in(conn, _refs, refs))
    read_refs(conn, batch, refs)  # reads only what the batch did not read ahead
    return {m: batch.refs[m] for m in refs if m in batch.refs}


def thread_lookups(conn: Connection, p: Parsed, ahead: Prepared | None = None) -> ThreadLookups:
    """The tickets `p` names; its tag and references from `ahead` when it prepared `p`."""
    if ahead is not None and ahead.parsed is p:
        tag, refs = ahead.tag, list(ahead.refs)
    else:
        tag, refs = tag_number(p.subject), message_refs(p)
    found = _ref_tickets(conn, refs) if refs else {}
    ref_tickets = [found[m] for m in refs if m in found]
    facts = ticket_facts(conn, ([tag] if tag else []) + ref_tickets)
    return ThreadLookups(
        tagged=facts.get(tag) if tag else None,
        referenced=tuple(facts[t] for t in dict.fromkeys(ref_tickets) if t in facts),
    )


def open_survey(
    conn: Connection, lookups: ThreadLookups, choice: ThreadChoice, sender: str
) -> Survey | None:
    """The survey of the resolved or closed ticket a person's mail follows up, if its
    requester sent it (a closed ticket past its reopen window too: the choice only links it)."""
    tid = choice.ticket_id or choice.linked_to
    if tid is None:
        return None
    facts = (lookups.tagged, *lookups.referenced)
    ticket = next((t for t in facts if t is not None and t.id == tid), None)
    if ticket is None or ticket.status not in ("resolved", "closed"):
        return None
    survey = latest_survey(conn, ticket.id)
    if survey is None or survey.requester_addr != sender.lower():
        return None
    return survey


def read_thread_ahead(
    conn: Connection, batch: BatchState, ready: list[Prepared], now: datetime
) -> None:
    """What the thread step of a batch's messages reads, one statement each for them all:
    the tickets of their Message-IDs, and the facts and recent inbound texts of every
    ticket they name."""
    read_refs(conn, batch, [m for p in ready for m in p.refs])
    named = [t for p in ready if p.parsed for t in named_tickets(p.tag, p.refs, batch.refs)]
    read_facts_ahead(conn, batch, named)
    read_recent_ahead(conn, batch, named, now - REPEATS_WINDOW)
