"""Ticket search: a frozen `SearchFilter` becomes one SELECT (pure; the caller runs it).

Free text goes to the dialect's full-text index (db/models_search.py): SQLite FTS5 over
articles (subject, body) and tickets (title), PostgreSQL `to_tsvector @@ to_tsquery`
over the same expressions its GIN indexes are built on. A ticket matches when its title
or one of its articles holds every word. Results come in the SOP order: highest priority
first, then the oldest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
    union,
)

from mailgate.db.models import OPEN_STATUSES, Article, Ticket, TicketCc, TicketQueue, TicketTag
from mailgate.db.models import TicketSla as Sla
from mailgate.db.models_search import (
    ARTICLES_FTS,
    PG_ARTICLES_DOCUMENT,
    PG_TEXT_CONFIG,
    PG_TICKETS_DOCUMENT,
    TICKETS_FTS,
)

SLA_STATES = ("breached", "ok", "paused", "missed")
_WORD = re.compile(r"\w+\*?", re.UNICODE)


@dataclass(frozen=True)
class SearchFilter:
    """What to look for; an empty field does not filter. Date ranges are [from, to)."""

    ids: tuple[int, ...] = ()
    queues: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()  # "open" means every status not resolved or closed
    assignee: str | None = None
    unassigned: bool = False
    requester: str | None = None  # an address, or "@domain" / "domain" for a whole domain
    address: str | None = None  # requester or CC (quick search)
    tags: tuple[str, ...] = ()  # every one of them
    category: str | None = None
    priority_min: int | None = None
    priority_max: int | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    updated_from: datetime | None = None
    updated_to: datetime | None = None
    closed_from: datetime | None = None
    closed_to: datetime | None = None
    sla: str | None = None  # one of SLA_STATES
    text: str | None = None  # words in titles and bodies
    title: str | None = None  # words in titles only (quick search)

    @property
    def empty(self) -> bool:
        return self == SearchFilter()


def quick_filter(query: str) -> SearchFilter:
    """H-Sphere's quick search: a ticket id (`123` or `#123`), an address, or title words."""
    q = query.strip()
    if re.fullmatch(r"#?\d+", q):
        return SearchFilter(ids=(int(q.lstrip("#")),))
    if "@" in q and " " not in q:
        return SearchFilter(address=q)
    return SearchFilter(title=q)


def fts5_query(words: str) -> str:
    """User words as an FTS5 query that is always valid: each word quoted, all required;
    a trailing `*` keeps its prefix meaning."""
    terms = []
    for w in _WORD.findall(words):
        stem = w.rstrip("*")
        terms.append(f'"{stem}"' + ("*" if w.endswith("*") else ""))
    return " ".join(terms)


def pg_tsquery(words: str) -> str:
    """The same words as a PostgreSQL tsquery: each quoted, all required, `*` a prefix."""
    return " & ".join(
        f"'{w.rstrip('*')}'" + (":*" if w.endswith("*") else "") for w in _WORD.findall(words)
    )


def _fts_tickets(words: str, dialect: str, titles_only: bool) -> ColumnElement[bool]:
    """Tickets whose title (or, unless titles_only, an article) holds every word: ticket
    ids from the index(es), so each part is an index lookup (an OR would scan tickets)."""
    t, a = Ticket.__table__.c, Article.__table__.c
    if dialect == "postgresql":
        terms = pg_tsquery(words)
        if not terms:
            return false()
        query = func.to_tsquery(literal_column(f"'{PG_TEXT_CONFIG}'::regconfig"), terms)
        in_title = select(t.id).where(literal_column(PG_TICKETS_DOCUMENT).op("@@")(query))
        in_articles = select(a.ticket_id).where(
            literal_column(PG_ARTICLES_DOCUMENT).op("@@")(query)
        )
    else:
        match = fts5_query(words)
        if not match:
            return false()
        in_title = (
            select(literal_column("rowid"))
            .select_from(text(TICKETS_FTS))
            .where(text(f"{TICKETS_FTS} MATCH :title_match").bindparams(title_match=match))
        )
        rowids = (
            select(literal_column("rowid"))
            .select_from(text(ARTICLES_FTS))
            .where(text(f"{ARTICLES_FTS} MATCH :body_match").bindparams(body_match=match))
        )
        in_articles = select(a.ticket_id).where(a.id.in_(rowids))
    return t.id.in_(in_title if titles_only else union(in_title, in_articles))


def sla_condition(state: str) -> ColumnElement[bool]:
    """Tickets in this SLA state (one of SLA_STATES), from the scheduler's ticket_sla."""
    t, s = Ticket.__table__.c, Sla.__table__.c
    breach_now = or_(
        s.res_breached_at.is_not(None),
        and_(s.fr_breached_at.is_not(None), t.first_response_at.is_(None)),
    )
    is_open = t.status.in_(OPEN_STATUSES)
    row = select(s.ticket_id).where(s.ticket_id == t.id)
    if state == "breached":
        return and_(is_open, exists(row.where(breach_now)))
    if state == "ok":
        return and_(is_open, ~exists(row.where(breach_now)))
    if state == "paused":
        return and_(is_open, exists(row.where(s.paused_since.is_not(None))))
    if state == "missed":  # a first-response or resolution target was ever missed
        return exists(row.where(or_(s.fr_breached_at.is_not(None), s.res_breached_at.is_not(None))))
    raise ValueError(f"unknown SLA state {state!r} (one of {', '.join(SLA_STATES)})")


def _requester(value: str) -> ColumnElement[bool]:
    t = Ticket.__table__.c
    v = value.strip().lower()
    # addresses are stored lower-cased (parse/addresses.py): a plain comparison uses the index
    if v.startswith("@") or "@" not in v:  # a whole domain, subdomains not included
        return t.requester_addr.endswith("@" + v.lstrip("@"), autoescape=True)
    return t.requester_addr == v


def _range(
    column: ColumnElement[datetime], start: datetime | None, end: datetime | None
) -> list[ColumnElement[bool]]:
    out = []
    if start is not None:
        out.append(column >= start)
    if end is not None:
        out.append(column < end)
    return out


def conditions(f: SearchFilter, dialect: str) -> list[ColumnElement[bool]]:
    """The WHERE terms of the filter on `tickets`."""
    t = Ticket.__table__.c
    tq, tt, tc = TicketQueue.__table__.c, TicketTag.__table__.c, TicketCc.__table__.c
    where: list[ColumnElement[bool]] = []
    if f.ids:
        where.append(t.id.in_(f.ids))
    if f.queues:
        where.append(t.id.in_(select(tq.ticket_id).where(tq.queue.in_(f.queues))))
    if f.statuses:
        wanted = {s for st in f.statuses for s in (OPEN_STATUSES if st == "open" else (st,))}
        where.append(t.status.in_(sorted(wanted)))
    if f.assignee:
        where.append(t.assignee == f.assignee)
    if f.unassigned:
        where.append(t.assignee.is_(None))
    if f.requester:
        where.append(_requester(f.requester))
    if f.address:
        addr = f.address.strip().lower()
        as_requester = select(t.id).where(t.requester_addr == addr)
        as_cc = select(tc.ticket_id).where(tc.address == addr)
        where.append(t.id.in_(union(as_requester, as_cc)))
    for tag in f.tags:
        where.append(t.id.in_(select(tt.ticket_id).where(tt.tag == tag)))
    if f.category is not None:
        where.append(t.category == f.category)
    if f.priority_min is not None:
        where.append(t.priority >= f.priority_min)
    if f.priority_max is not None:
        where.append(t.priority <= f.priority_max)
    where += _range(t.created_at, f.created_from, f.created_to)
    where += _range(t.updated_at, f.updated_from, f.updated_to)
    where += _range(t.closed_at, f.closed_from, f.closed_to)
    if f.sla:
        where.append(sla_condition(f.sla))
    if f.text:
        where.append(_fts_tickets(f.text, dialect, titles_only=False))
    if f.title:
        where.append(_fts_tickets(f.title, dialect, titles_only=True))
    return where


def search_query(f: SearchFilter, dialect: str, limit: int | None = None) -> Select:
    """Matching tickets' rows, highest priority first, then the oldest; each row carries
    `total`, the number of matches. With full text that is one pass over the matches
    instead of two (the full-text part is the costly one); without, the count is its own
    query, which an index answers, and the rows a top-N sort."""
    t = Ticket.__table__.c
    if f.text or f.title:
        total: ColumnElement[int] = func.count().over()
    else:
        total = count_query(f, dialect).scalar_subquery()
    q = (
        select(Ticket.__table__, total.label("total"))
        .where(*conditions(f, dialect))
        .order_by(t.priority.desc(), t.created_at, t.id)
    )
    return q if limit is None else q.limit(limit)


def count_query(f: SearchFilter, dialect: str) -> Select:
    return select(func.count()).select_from(Ticket.__table__).where(*conditions(f, dialect))


def ids_query(f: SearchFilter, dialect: str) -> Select:
    t = Ticket.__table__.c
    return select(t.id).where(*conditions(f, dialect)).order_by(t.id)


def queues_and_tags(ids: Sequence[int]) -> tuple[Select, Select]:
    """The queues and the tags of these tickets (for the result table)."""
    tq, tt = TicketQueue.__table__.c, TicketTag.__table__.c
    return (
        select(tq.ticket_id, tq.queue).where(tq.ticket_id.in_(ids)),
        select(tt.ticket_id, tt.tag).where(tt.ticket_id.in_(ids)),
    )
