"""Queues that were removed from the configuration while tickets are still open in them,
and retiring such a queue: its tickets moved to another queue, or closed. Audited.

A queue file removed under open tickets would leave them orphaned: a customer's follow-up
would land on a ticket of a queue that no agent serves, and notify nobody. So a start or
a reload refuses such a configuration (`removed_queue_problems`) until
`mailgate queues retire NAME --move-to OTHER | --close` has run (`retire`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, case, delete, func, select, update

from mailgate.config.model import Config
from mailgate.store.audit import audit
from mailgate.store.sql import insert_ignore
from mailgate.store.tickets import ticket_queues, tickets

NOT_CLOSED = tickets.c.status != "closed"  # resolved tickets reopen on a reply: they count


@dataclass(frozen=True)
class Retired:
    moved: int  # tickets now in the other queue (every status)
    closed: int  # open tickets closed
    views: int  # other queues' tickets that were also visible in it, now not


def open_tickets_by_queue(conn: Connection) -> dict[str, int]:
    """Queue -> tickets in it that are not closed."""
    q = select(tickets.c.queue, func.count()).where(NOT_CLOSED).group_by(tickets.c.queue)
    return {name: int(n) for name, n in conn.execute(q)}


def removed_queue_problems(conn: Connection, configured: Iterable[str], where: Path) -> list[str]:
    """One problem per queue with open tickets that no queue file configures any more."""
    known = set(configured)
    return [
        f"{where}: queue {name!r} has no file any more but {n} open ticket(s): run "
        f"`mailgate queues retire {name} --move-to OTHER` (or `--close`) first, or put "
        "its file back"
        for name, n in sorted(open_tickets_by_queue(conn).items())
        if name not in known
    ]


def has_tickets(conn: Connection, name: str) -> bool:
    """Whether any ticket is in queue `name` or seen in it."""
    mine = select(tickets.c.id).where(tickets.c.queue == name).limit(1)
    seen = select(ticket_queues.c.ticket_id).where(ticket_queues.c.queue == name).limit(1)
    return conn.execute(mine).first() is not None or conn.execute(seen).first() is not None


def queues_dir(cfg: Config) -> Path:
    return (cfg.path.parent / cfg.main.queues_dir).resolve()


def config_problems(conn: Connection, cfg: Config) -> list[str]:
    """`removed_queue_problems` for a configuration (a start, a reload, check-config)."""
    return removed_queue_problems(conn, (q.name for q in cfg.queues), queues_dir(cfg))


def _ids(conn: Connection, name: str, *where: object) -> list[int]:
    return list(conn.scalars(select(tickets.c.id).where(tickets.c.queue == name, *where)))


def _drop_views(conn: Connection, name: str, keep: Collection[int]) -> int:
    """Remove `name` from the queues tickets are visible in (except `keep`)."""
    c = ticket_queues.c
    stmt = delete(ticket_queues).where(c.queue == name)
    if keep:
        stmt = stmt.where(c.ticket_id.not_in(keep))
    return int(conn.execute(stmt).rowcount or 0)


def retire(
    conn: Connection,
    name: str,
    *,
    move_to: str | None,
    keep_assignees: Collection[str],
    actor: str,
    now: datetime,
) -> Retired:
    """Move every ticket of queue `name` to `move_to` (its assignee kept if in
    `keep_assignees`, the agents of the new queue), or with `move_to` None close its open
    tickets; either way `name` is no longer a queue any ticket is seen in."""
    if move_to is None:
        ids = _ids(conn, name, NOT_CLOSED)
        conn.execute(
            update(tickets)
            .where(tickets.c.id.in_(ids))
            .values(status="closed", closed_at=now, updated_at=now)
        )
        for tid in ids:
            audit(conn, tid, actor, "queue-retired", now, queue=name, closed=True)
        home = _ids(conn, name)  # its own tickets stay seen where they are (closed)
        return Retired(0, len(ids), _drop_views(conn, name, keep=home))
    ids = _ids(conn, name)
    kept = case((tickets.c.assignee.in_(list(keep_assignees)), tickets.c.assignee), else_=None)
    conn.execute(update(tickets).where(tickets.c.id.in_(ids)).values(queue=move_to, assignee=kept))
    c = ticket_queues.c
    seen = list(conn.scalars(select(c.ticket_id).where(c.queue == name)))
    insert_ignore(conn, ticket_queues, [{"ticket_id": t, "queue": move_to} for t in {*ids, *seen}])
    _drop_views(conn, name, keep=())
    for tid in ids:
        audit(conn, tid, actor, "queue-retired", now, queue=name, moved_to=move_to)
    return Retired(len(ids), 0, len(set(seen) - set(ids)))
