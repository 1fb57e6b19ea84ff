"""The rows `mailgate report` computes a month from (mailgate/report/ is pure): tickets
received in the month or answered in it, the answers, escalations and reopens, ratings,
and the labels of the month before. Read-only; a few set-based queries."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select

from mailgate.db.models import TicketSla
from mailgate.db.models_satisfaction import satisfaction_surveys
from mailgate.report.rows import (
    AnswerRow,
    EventRow,
    LabelRow,
    Month,
    RatingRow,
    ReportRows,
    TicketRow,
)
from mailgate.runtime import chunks
from mailgate.store.articles import articles
from mailgate.store.audit import audit_events
from mailgate.store.tickets import ticket_tags, tickets

BODY_CHARS = 300
CHUNK = 5000
t, a, e, s = tickets.c, articles.c, audit_events.c, satisfaction_surveys.c
ticket_sla = TicketSla.__table__


def _in(col: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(col >= start, col < end)


def _tags(conn: Connection, ids: list[int]) -> dict[int, tuple[str, ...]]:
    out: dict[int, list[str]] = defaultdict(list)
    for chunk in chunks(ids, CHUNK):
        q = select(ticket_tags.c.ticket_id, ticket_tags.c.tag).where(
            ticket_tags.c.ticket_id.in_(chunk)
        )
        for tid, tag in conn.execute(q):
            out[tid].append(tag)
    return {tid: tuple(sorted(v)) for tid, v in out.items()}


def _bodies(conn: Connection, ids: list[int]) -> dict[int, str]:
    """The start of each ticket's first customer mail (its new text)."""
    out: dict[int, str] = {}
    for chunk in chunks(ids, CHUNK):
        first = (
            select(func.min(a.id))
            .where(a.ticket_id.in_(chunk), a.kind == "inbound")
            .group_by(a.ticket_id)
        )
        q = select(a.ticket_id, func.substr(a.new_text, 1, BODY_CHARS), a.body_text).where(
            a.id.in_(first)
        )
        for tid, new, body in conn.execute(q):
            out[tid] = new or (body or "")[:BODY_CHARS]
    return out


def _answers(conn: Connection, m: Month) -> list[AnswerRow]:
    received = select(t.id).where(_in(t.created_at, m.start, m.end))
    q = select(a.ticket_id, a.author, a.created_at).where(
        a.kind == "outbound",
        a.author != "",
        or_(_in(a.created_at, m.start, m.end), a.ticket_id.in_(received)),
    )
    return [AnswerRow(tid, author, at) for tid, author, at in conn.execute(q)]


def _tickets(conn: Connection, m: Month, answered: set[int]) -> list[TicketRow]:
    cols = (
        t.id,
        t.queue,
        t.title,
        t.created_at,
        t.first_response_at,
        func.coalesce(t.resolved_at, t.closed_at),
        func.coalesce(ticket_sla.c.class_priority, t.priority),
        t.complexity,
        t.category,
    )
    base = select(*cols).outerjoin(ticket_sla, ticket_sla.c.ticket_id == t.id)
    found = list(conn.execute(base.where(_in(t.created_at, m.start, m.end))))
    have = {r[0] for r in found}
    for chunk in chunks(sorted(answered - have), CHUNK):
        found += conn.execute(base.where(t.id.in_(chunk)))
    ids = [r[0] for r in found]
    tags, bodies = _tags(conn, ids), _bodies(conn, ids)
    return [
        TicketRow(
            id=r[0],
            queue=r[1],
            title=r[2],
            body=bodies.get(r[0], ""),
            created_at=r[3],
            first_response_at=r[4],
            done_at=r[5],
            priority=r[6],
            complexity=r[7] or "",
            category=r[8] or "",
            tags=tags.get(r[0], ()),
        )
        for r in found
    ]


def _events(conn: Connection, m: Month) -> list[EventRow]:
    """Tier escalations (the SLA sweep's and #escalate) and reopens, in the month."""
    q = (
        select(e.ticket_id, t.queue, e.action, e.actor, e.at, e.detail)
        .join(tickets, t.id == e.ticket_id)
        .where(_in(e.at, m.start, m.end), e.action.in_(("escalated", "reopened", "command")))
    )
    out = []
    for tid, queue, action, actor, at, detail in conn.execute(q):
        if action == "command":
            line = str((detail or {}).get("line", ""))
            if not line.lower().startswith("#escalate"):
                continue
            action = "escalated"
        out.append(EventRow(tid, queue, action, actor, at))
    return out


def _ratings(conn: Connection, m: Month) -> list[RatingRow]:
    q = select(s.ticket_id, s.queue, s.agent, s.rating, s.comment, s.rated_at).where(
        _in(s.rated_at, m.start, m.end), s.rating.is_not(None)
    )
    return [RatingRow(*r) for r in conn.execute(q)]


def _previous(conn: Connection, m: Month) -> list[LabelRow]:
    p = m.previous()
    found = list(conn.execute(select(t.id, t.category).where(_in(t.created_at, p.start, p.end))))
    tags = _tags(conn, [r[0] for r in found])
    return [LabelRow(tid, cat or "", tags.get(tid, ())) for tid, cat in found]


def report_rows(conn: Connection, m: Month) -> ReportRows:
    answers = _answers(conn, m)
    answered = {x.ticket_id for x in answers if m.start <= x.at < m.end}
    return ReportRows(
        month=m,
        tickets=tuple(_tickets(conn, m, answered)),
        previous=tuple(_previous(conn, m)),
        answers=tuple(answers),
        events=tuple(_events(conn, m)),
        ratings=tuple(_ratings(conn, m)),
    )
