"""Reads the loop breakers compare with: a ticket's recent texts from one sender or agent."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, select

from mailgate.store import fast
from mailgate.store.articles import articles
from mailgate.store.batch import BatchState, RecentInbound, current

RECENT_LIMIT = 20
REPEATS_WINDOW = timedelta(days=1)  # how far back a follow-up's earlier texts count as a run


@functools.cache
def _recent(by_sender: bool, by_author: bool, verdicts: bool = True) -> Select[Any]:
    """Built once per filter combination: building it per message cost more than running it."""
    c = articles.c
    q = select(c.body_text, *([c.verdict] if verdicts else [])).where(
        c.ticket_id == bindparam("ticket_id"),
        c.kind == bindparam("kind"),
        c.created_at >= bindparam("since"),
    )
    if by_sender:
        q = q.where(c.from_addr == bindparam("from_addr"))
    if by_author:
        q = q.where(c.author == bindparam("author"))
    q = q.order_by(c.id.desc()).limit(RECENT_LIMIT)
    fast.SEES_BATCH.add(q)  # the batch's own articles are added from its state (`_held`)
    return q


def _held(conn: Connection, ticket_id: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The ticket's articles an optimistic batch holds back that the query would find,
    newest first (their ids are above every stored one: store/ids.py)."""
    batch = current(conn)
    rows = batch.articles_of.get(ticket_id, ()) if batch is not None else ()
    want = [(k, params[k]) for k in ("kind", "from_addr", "author") if params.get(k) is not None]
    since = params["since"]
    return [
        r for r in reversed(rows)
        if r["created_at"] >= since and all(r[k] == v for k, v in want)
    ][:RECENT_LIMIT]  # fmt: skip


def _held_inbound(
    batch: BatchState | None, ticket_id: int, since: datetime, from_addr: str
) -> list[str]:
    """The bodies `_held` gives for the inbound articles from `from_addr` (the same rows,
    filtered without its general form: this runs for every follow-up)."""
    rows = batch.articles_of.get(ticket_id, ()) if batch is not None else ()
    return [
        r["body_text"] for r in reversed(rows)
        if r["kind"] == "inbound" and r["from_addr"] == from_addr and r["created_at"] >= since
    ][:RECENT_LIMIT]  # fmt: skip


def recent_texts(
    conn: Connection,
    ticket_id: int,
    since: datetime,
    *,
    kind: str,
    from_addr: str | None = None,
    author: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """(body, verdict) of the ticket's latest `kind` articles since `since`, newest first."""
    params = {"ticket_id": ticket_id, "kind": kind, "since": since}
    params.update(from_addr=from_addr, author=author)
    held = [
        (r["body_text"], json.loads(json.dumps(r["verdict"])))
        for r in _held(conn, ticket_id, params)
    ]
    rows = fast.rows(conn, _recent(from_addr is not None, author is not None), params)
    return [(body or "", verdict or {}) for body, verdict in [*held, *rows][:RECENT_LIMIT]]


@functools.cache
def _recent_inbound(n: int) -> Select[Any]:
    """(ticket, sender, created_at, body) of the latest RECENT_LIMIT inbound articles
    since `since` of each sender on `n` tickets (store/fast.rows_in), newest first."""
    c = articles.c
    newest_first = func.row_number().over(
        partition_by=(c.ticket_id, c.from_addr), order_by=c.id.desc()
    )
    ranked = (
        select(c.ticket_id, c.from_addr, c.created_at, c.body_text, newest_first.label("rank"))
        .where(
            c.ticket_id.in_(fast.in_binds(n)),
            c.kind == "inbound",
            c.created_at >= bindparam("since"),
        )
        .subquery()
    )
    r = ranked.c
    stmt = (
        select(r.ticket_id, r.from_addr, r.created_at, r.body_text)
        .where(r.rank <= RECENT_LIMIT)
        .order_by(r.rank)
    )
    fast.SEES_BATCH.add(stmt)  # the batch's own articles are added from its state (`_held`)
    return stmt


# where the recent texts come from: while texts read ahead are known, any other statement
# on it writes the held rows first, and the state forgets the texts (store/batch.py)
_RECENT_TABLES = ("articles",)


def read_recent_ahead(
    conn: Connection, batch: BatchState, ticket_ids: list[int], since: datetime
) -> None:
    """The latest inbound texts since `since` of every sender on these tickets: one
    statement for the batch's follow-ups (`recent_inbound` answers from them)."""
    ticket_ids = [t for t in dict.fromkeys(ticket_ids) if t not in batch.recent_ahead]
    if not ticket_ids:
        return
    read = {t: RecentInbound(since, {}) for t in ticket_ids}
    for tid, sender, created_at, body in fast.rows_in(
        conn, _recent_inbound, ticket_ids, {"since": since}
    ):
        read[tid].by_sender.setdefault(sender, []).append((created_at, body or ""))
    batch.recent_ahead.update(read)
    batch.live.update(_RECENT_TABLES)


def _stored_ahead(
    batch: BatchState | None, ticket_id: int, since: datetime, from_addr: str
) -> list[str] | None:
    """The stored bodies `_recent` would find, from what the batch read ahead; None when
    what it read cannot tell (then the statement runs)."""
    if batch is None:
        return None
    if ticket_id in batch.new_rows:  # the batch made it and holds its INSERT: none stored
        return []
    read = batch.recent_ahead.get(ticket_id)
    if read is None or since < read.since:
        return None
    rows = read.by_sender.get(from_addr, [])
    found = [body for created_at, body in rows if created_at >= since]
    # all RECENT_LIMIT read, some older than `since`: older ones further back may count
    return None if len(rows) == RECENT_LIMIT and len(found) < len(rows) else found


def recent_inbound(conn: Connection, ticket_id: int, since: datetime, from_addr: str) -> list[str]:
    """The bodies of the ticket's latest inbound articles from `from_addr` since `since`,
    newest first (as `recent_texts`, their verdicts not read)."""
    batch = current(conn)
    held = _held_inbound(batch, ticket_id, since, from_addr)
    stored = _stored_ahead(batch, ticket_id, since, from_addr)
    if stored is None:
        params = {"ticket_id": ticket_id, "kind": "inbound", "since": since, "from_addr": from_addr}
        stored = fast.scalars(conn, _recent(True, False, False), params)
    return [body or "" for body in [*held, *stored][:RECENT_LIMIT]]
