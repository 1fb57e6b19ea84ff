"""Reads the loop breakers compare with: a ticket's recent texts from one sender or agent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from mailgate.store.articles import articles

RECENT_LIMIT = 20


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
    q = select(articles.c.body_text, articles.c.verdict).where(
        articles.c.ticket_id == ticket_id,
        articles.c.kind == kind,
        articles.c.created_at >= since,
    )
    if from_addr is not None:
        q = q.where(articles.c.from_addr == from_addr)
    if author is not None:
        q = q.where(articles.c.author == author)
    rows = conn.execute(q.order_by(articles.c.id.desc()).limit(RECENT_LIMIT)).all()
    return [(r.body_text or "", r.verdict or {}) for r in rows]
