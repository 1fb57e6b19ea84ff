"""What an agent mail reads: a ticket, its digest, and the answers to `#list`, `#unassigned`,
`#show`, `#help`, `#secret` and `#attachment`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, Row, bindparam, literal_column, select, union_all

from mailgate.agents import access, attachments, tokens
from mailgate.agents.commands.base import Query
from mailgate.agents.commands.queries import (
    GetAttachment,
    Help,
    ListMine,
    ListUnassigned,
    Secret,
    Show,
)
from mailgate.agents.plan import TicketView
from mailgate.config.model import Config, Queue
from mailgate.config.schema import Agent
from mailgate.db.models import OPEN_STATUSES
from mailgate.outgoing import agent_mails
from mailgate.outgoing import digest as dg
from mailgate.outgoing.compose import Outgoing
from mailgate.pgp.keyring import Keyrings
from mailgate.pgp.secrets import secret_for_agent
from mailgate.store import fast
from mailgate.store.articles import articles
from mailgate.store.read_together import Read, rows_together
from mailgate.store.tickets import ticket_ccs, ticket_queues, ticket_tags, tickets

LIST_LIMIT = 50

# built once: a notification runs these per customer mail (half the cost of building each time)
_TID = bindparam("tid", type_=Integer)
_TICKET = select(tickets).where(tickets.c.id == _TID)
_QUEUES = select(ticket_queues.c.queue).where(ticket_queues.c.ticket_id == _TID)
_CCS = select(ticket_ccs.c.address).where(ticket_ccs.c.ticket_id == _TID)
_QUEUE, _CC, _TAG = 0, 1, 2
# the three in one statement, each row (which, value): two statements fewer per digest
_LABELS = union_all(
    *(
        select(literal_column(str(which), Integer).label("which"), column.label("value")).where(
            column.table.c.ticket_id == _TID
        )
        for which, column in (
            (_QUEUE, ticket_queues.c.queue),
            (_CC, ticket_ccs.c.address),
            (_TAG, ticket_tags.c.tag),
        )
    )
)
_HISTORY = (
    select(
        articles.c.created_at,
        articles.c.kind,
        articles.c.author,
        articles.c.from_addr,
        articles.c.body_text,
        articles.c.new_text,
    )
    .where(articles.c.ticket_id == _TID)
    .order_by(articles.c.id.desc())
    .limit(bindparam("n", type_=Integer))
)
# the requester's other tickets, by the ticket id alone (so it goes with the other reads)
_REQUESTER = select(tickets.c.requester_addr).where(tickets.c.id == _TID).scalar_subquery()
_LATEST = (
    select(tickets.c.id, tickets.c.status, tickets.c.created_at, tickets.c.title)
    .where(tickets.c.requester_addr == _REQUESTER, tickets.c.id != _TID)
    .order_by(tickets.c.created_at.desc(), tickets.c.id.desc())
    .limit(bindparam("n", type_=Integer))
)


def ticket_row(conn: Connection, ticket_id: int) -> Row[Any] | None:
    found = fast.named(conn, _TICKET, {"tid": ticket_id})
    return found[0] if found else None


def ticket_ccs_of(conn: Connection, ticket_id: int) -> tuple[str, ...]:
    return tuple(sorted(fast.scalars(conn, _CCS, {"tid": ticket_id})))


def ticket_view(conn: Connection, row: Row[Any]) -> TicketView:
    return _view(row, fast.scalars(conn, _QUEUES, {"tid": row.id}))


def _view(row: Row[Any], queues: list[str]) -> TicketView:
    return TicketView(
        id=row.id,
        queue=row.queue,
        queues=frozenset({*queues, row.queue}),
        status=row.status,
        priority=row.priority,
        assignee=row.assignee,
        sticky=bool(row.sticky),
        tier=row.tier,
        requester=row.requester_addr,
    )


def _sizes(config: Config, queue_name: str) -> tuple[int, int]:
    """How many recent articles and other tickets a digest of the queue's ticket shows."""
    queue = config.queue(queue_name)
    settings = queue.agent_mail if queue else None
    return (settings.history_articles, settings.latest_tickets) if settings else (5, 5)


def _largest_sizes(config: Config) -> tuple[int, int]:
    """The largest history and latest-tickets sizes any queue shows (at least 5 each)."""
    sizes = [(q.agent_mail.history_articles, q.agent_mail.latest_tickets) for q in config.queues]
    sizes.append((5, 5))
    return max(h for h, _ in sizes), max(n for _, n in sizes)


def _digest_reads(ticket_id: int, n_history: int, n_latest: int) -> list[Read]:
    tid = {"tid": ticket_id}
    return [(_LABELS, tid), (_HISTORY, {**tid, "n": n_history}), (_LATEST, {**tid, "n": n_latest})]


def _labels(rows: list[Any]) -> tuple[list[str], list[str], list[str]]:
    """`_LABELS`'s rows: the queues, CCs and tags."""
    found: tuple[list[str], list[str], list[str]] = ([], [], [])
    for which, value in rows:
        found[which].append(value)
    return found


def ticket_digest(conn: Connection, config: Config, row: Row[Any]) -> dg.TicketDigest:
    """What a mail to an agent shows about the ticket in `row` (a tickets row)."""
    labels, history, latest = rows_together(conn, _digest_reads(row.id, *_sizes(config, row.queue)))
    _, ccs, tags = _labels(labels)
    return _digest(config, row, tags, history, latest, ccs)


def notification_reads(
    conn: Connection, config: Config, ticket_id: int, article_id: int | None
) -> tuple[Row[Any], TicketView, dg.TicketDigest, list[attachments.StoredAttachment]] | None:
    """A ticket's row, view and digest and an article's attachments: what a notification
    of a customer mail reads, sent together (one round trip on PostgreSQL). The digest's
    lists are read at the largest size any queue shows and cut to the ticket's queue's."""
    tid = {"tid": ticket_id}
    reads = [(_TICKET, tid), *_digest_reads(ticket_id, *_largest_sizes(config))]
    if article_id:
        reads.append(attachments.of_article_read(article_id))
    row, labels, history, latest, *items = rows_together(conn, reads)
    if not row:
        return None
    (ticket,) = row
    queues, ccs, tags = _labels(labels)
    digest = _digest(config, ticket, tags, history, latest, ccs)
    files = attachments.stored(items[0]) if items else []
    return ticket, _view(ticket, queues), digest, files


def _digest(
    config: Config,
    row: Row[Any],
    tags: list[str],
    history: list[Any],
    latest: list[Any],
    ccs: list[str],
) -> dg.TicketDigest:
    n_history, n_latest = _sizes(config, row.queue)
    requester = (
        f"{row.requester_name} <{row.requester_addr}>" if row.requester_name else row.requester_addr
    )
    return dg.TicketDigest(
        id=row.id,
        title=row.title,
        queue=row.queue,
        status=row.status,
        priority=row.priority,
        assignee=row.assignee or "",
        sticky=bool(row.sticky),
        tier=row.tier,
        requester=requester,
        ccs=tuple(sorted(ccs)),
        tags=tuple(sorted(tags)),
        complexity=row.complexity,
        created=dg.when(row.created_at),
        history=tuple(
            dg.ArticleSummary(
                when=dg.when(a.created_at),
                kind=a.kind,
                who=a.author or a.from_addr or "mailgate",
                text=dg.shorten(a.new_text or a.body_text),
            )
            for a in reversed(history[:n_history])
        ),
        latest=tuple(
            dg.OtherTicket(t.id, t.status, dg.when(t.created_at)[:10], t.title)
            for t in latest[:n_latest]
        ),
    )


def answer_queries(
    conn: Connection,
    config: Config,
    agent: Agent,
    queue: Queue,
    queries: tuple[Query, ...],
    *,
    now: datetime,
    cause: str,
    keyrings: Keyrings,
) -> tuple[tuple[str, ...], list[Outgoing]]:
    """The sections answering the queries, and the mails they send (`#secret`)."""
    sections: list[str] = []
    mails: list[Outgoing] = []
    for q in queries:
        if isinstance(q, Help):
            sections.append(dg.help_section(config, queue, agent))
        elif isinstance(q, ListMine):
            rows = _list(conn, config, agent, queue, tickets.c.assignee == agent.name)
            sections.append(dg.list_section(config, queue, agent, "Your open tickets", rows))
        elif isinstance(q, ListUnassigned):
            cond = tickets.c.assignee.is_(None)
            if agent.role != "admin":
                visible = select(ticket_queues.c.ticket_id).where(
                    ticket_queues.c.queue.in_(agent.queues)
                )
                cond = cond & tickets.c.id.in_(visible)
            rows = _list(conn, config, agent, queue, cond)
            sections.append(dg.list_section(config, queue, agent, "Unassigned open tickets", rows))
        elif isinstance(q, Show):
            sections.append(_show(conn, config, agent, queue, q.ticket_id))
        elif isinstance(q, Secret):
            sent = secret_for_agent(conn, config, q.ticket_id, agent, now, keyrings, cause=cause)
            if isinstance(sent, str):
                sections.append(sent)
            else:
                mails.append(sent)
                sections.append(f"#secret {q.ticket_id}: sent to you in a separate mail.")
        elif isinstance(q, GetAttachment):
            sent = _attachment(conn, config, agent, queue, q.attachment_id, cause, now)
            if isinstance(sent, str):
                sections.append(sent)
            else:
                mails.append(sent)
                sections.append(f"#attachment {q.attachment_id}: sent to you in a separate mail.")
    return tuple(sections), mails


def _attachment(
    conn: Connection,
    config: Config,
    agent: Agent,
    queue: Queue,
    attachment_id: int,
    cause: str,
    now: datetime,
) -> Outgoing | str:
    """The mail carrying one attachment, or why not (the same answer for "no such" and
    "not yours", as #show gives)."""
    found = attachments.by_id(conn, attachment_id)
    row = ticket_row(conn, found.ticket_id) if found else None
    if found is None or row is None:
        return f"#attachment {attachment_id}: no such attachment in your queues."
    view = ticket_view(conn, row)
    if not access.can_see(agent, view.queues, view.assignee):
        return f"#attachment {attachment_id}: no such attachment in your queues."
    if found.agent_only:
        return f"#attachment {attachment_id}: decrypted PGP content: #secret {row.id} sends it."
    home = config.queue(row.queue) or queue
    return agent_mails.attachment_mail(
        config, home, agent, found, attachments.out(conn, found), cause=cause, now=now
    )


def _list(
    conn: Connection, config: Config, agent: Agent, queue: Queue, condition: Any
) -> tuple[dg.ListedTicket, ...]:
    rows = conn.execute(
        select(
            tickets.c.id,
            tickets.c.priority,
            tickets.c.status,
            tickets.c.queue,
            tickets.c.created_at,
            tickets.c.title,
            tickets.c.assignee,
        )
        .where(tickets.c.status.in_(OPEN_STATUSES), condition)
        .order_by(tickets.c.priority.desc(), tickets.c.created_at.asc(), tickets.c.id.asc())
        .limit(LIST_LIMIT)
    ).all()

    def address(name: str) -> str:
        q = config.queue(name)
        return q.address if q else queue.address

    return tuple(
        dg.ListedTicket(
            id=r.id,
            priority=r.priority,
            status=r.status,
            queue=r.queue,
            created=dg.when(r.created_at)[:10],
            title=r.title,
            assignee=r.assignee or "",
            reply_address=tokens.reply_address(config.secret, agent.name, r.id, address(r.queue)),
        )
        for r in rows
    )


def _show(conn: Connection, config: Config, agent: Agent, queue: Queue, ticket_id: int) -> str:
    row = ticket_row(conn, ticket_id)
    if row is None:
        return f"#show {ticket_id}: no such ticket in your queues."
    view = ticket_view(conn, row)
    if not access.can_see(agent, view.queues, view.assignee):
        return f"#show {ticket_id}: no such ticket in your queues."
    home = config.queue(row.queue) or queue
    return dg.show_section(config, home, agent, ticket_digest(conn, config, row))
