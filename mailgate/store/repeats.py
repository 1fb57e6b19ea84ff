"""Reads the loop breakers compare with: a ticket's recent texts from one sender or agent."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select

from mailgate.store import fast
from mailgate.store.articles import articles
from mailgate.store.batch import current

RECENT_LIMIT = 20


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


def recent_bodies(
    conn: Connection, ticket_id: int, since: datetime, *, kind: str, from_addr: str
) -> list[str]:
    """The bodies of `recent_texts` from `from_addr` (their verdicts not read)."""
    params = {"ticket_id": ticket_id, "kind": kind, "since": since, "from_addr": from_addr}
    held = [r["body_text"] for r in _held(conn, ticket_id, params)]
    stored = fast.scalars(conn, _recent(True, False, False), params)
    return [body or "" for body in [*held, *stored][:RECENT_LIMIT]]
