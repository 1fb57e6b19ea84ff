"""Reads the loop breakers compare with: a ticket's recent texts from one sender or agent."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select

from mailgate.store import fast
from mailgate.store.articles import articles

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
    return q.order_by(c.id.desc()).limit(RECENT_LIMIT)


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
    rows = fast.rows(conn, _recent(from_addr is not None, author is not None), params)
    return [(body or "", verdict or {}) for body, verdict in rows]


def recent_bodies(
    conn: Connection, ticket_id: int, since: datetime, *, kind: str, from_addr: str
) -> list[str]:
    """The bodies of `recent_texts` from `from_addr` (their verdicts not read)."""
    params = {"ticket_id": ticket_id, "kind": kind, "since": since, "from_addr": from_addr}
    return [body or "" for body in fast.scalars(conn, _recent(True, False, False), params)]
