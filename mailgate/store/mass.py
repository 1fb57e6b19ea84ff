"""Mass actions on a search result: close, assign, move, tag, priority, delete.

`diff` says what an action would change on one ticket (the dry run prints it, the real
run writes it), with the same column rules as an agent's command (agents/changes.py):
assigning a new ticket opens it, moving one unassigns it. Every changed ticket gets an
audit event naming who ran the action. Deleting removes the tickets, their articles and
everything hanging on them, and the blobs no remaining row refers to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, Row, Table, delete, exists, func, select, update

from mailgate.agents.changes import ticket_values, write_change
from mailgate.agents.plan import TicketChange
from mailgate.db.models import Article, Blob, Ticket, TicketTag
from mailgate.db.tables import metadata
from mailgate.store.audit import audit

tickets: Table = Ticket.__table__  # type: ignore[assignment]
articles: Table = Article.__table__  # type: ignore[assignment]
blobs: Table = Blob.__table__  # type: ignore[assignment]
ticket_tags: Table = TicketTag.__table__  # type: ignore[assignment]

ACTIONS = ("close", "assign", "move", "tag", "priority", "delete")
SHOWN = ("status", "assignee", "queue", "priority")  # the columns a dry run lists
# rows that stay when their ticket is deleted, pointing at no ticket: mail already sent
# (or on its way) and what the governor counted for it
KEPT_ON_DELETE = frozenset({"outbox"})
CHUNK = 500


@dataclass(frozen=True)
class MassAction:
    kind: str  # one of ACTIONS
    agent: str | None = None  # assign
    queue: str | None = None  # move
    priority: int | None = None  # priority
    tag_add: tuple[str, ...] = ()  # tag
    tag_remove: tuple[str, ...] = ()

    def change(self) -> TicketChange:
        if self.kind == "close":
            return TicketChange(status="closed")
        if self.kind == "assign":
            return TicketChange(assign=True, assignee=self.agent)
        if self.kind == "move":
            return TicketChange(queue=self.queue)
        if self.kind == "priority":
            return TicketChange(priority=self.priority)
        if self.kind == "tag":
            return TicketChange(tag_add=self.tag_add, tag_remove=self.tag_remove)
        raise ValueError(f"{self.kind} is not a change of columns")


def diff(action: MassAction, row: Row[Any], tags: set[str], now: datetime) -> dict[str, Any]:
    """What the action changes on this ticket: {column: [before, after]}, and for tags
    {"tags": {"add": [...], "remove": [...]}}; empty when it changes nothing."""
    if action.kind == "delete":
        return {"delete": True}
    if action.kind == "close" and row.status == "closed":
        return {}
    out: dict[str, Any] = {}
    values = ticket_values(action.change(), False, row, now)
    for name in SHOWN:
        if name in values and values[name] != getattr(row, name):
            out[name] = [getattr(row, name), values[name]]
    added = sorted(set(action.tag_add) - tags)
    removed = sorted(set(action.tag_remove) & tags)
    if added or removed:
        out["tags"] = {"add": added, "remove": removed}
    return out


def plan(
    conn: Connection, action: MassAction, ids: list[int], now: datetime
) -> list[tuple[Row[Any], dict[str, Any]]]:
    """(ticket row, diff) of every ticket the action changes, in id order."""
    out = []
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        tags: dict[int, set[str]] = {}
        tag_rows = select(ticket_tags.c.ticket_id, ticket_tags.c.tag).where(
            ticket_tags.c.ticket_id.in_(chunk)
        )
        for tid, tag in conn.execute(tag_rows):
            tags.setdefault(tid, set()).add(tag)
        rows = conn.execute(select(tickets).where(tickets.c.id.in_(chunk)).order_by(tickets.c.id))
        for row in rows:
            d = diff(action, row, tags.get(row.id, set()), now)
            if d:
                out.append((row, d))
    return out


def apply(
    conn: Connection,
    action: MassAction,
    planned: list[tuple[Row[Any], dict[str, Any]]],
    actor: str,
    now: datetime,
) -> dict[str, int]:
    """Write the planned changes (or delete), each audited with `actor`; what was done."""
    if action.kind == "delete":
        return delete_tickets(conn, [row for row, _ in planned], actor, now)
    change = action.change()
    for row, d in planned:
        write_change(conn, row, change, False, now)
        audit(conn, row.id, actor, f"mass-{action.kind}", now, changes=d)
    return {"tickets": len(planned)}


def _referencing(target: Table) -> list[Column[Any]]:
    """Every column of every table with a foreign key to `target`."""
    return [
        fk.parent
        for table in metadata.sorted_tables
        for fk in table.foreign_keys
        if fk.column.table is target
    ]


def _delete_where(conn: Connection, table: Table, where: Any, shas: set[str]) -> int:
    """Delete `table`'s rows matching `where` after their dependants (recursively);
    the blob hashes they referred to are added to `shas`."""
    for col in _referencing(blobs):
        if col.table is table:
            shas.update(s for (s,) in conn.execute(select(col).where(where)) if s)
    pk = list(table.primary_key.columns)
    for col in _referencing(table) if len(pk) == 1 else ():
        child: Table = col.table  # type: ignore[assignment]
        if child.name in KEPT_ON_DELETE:
            conn.execute(
                update(child).where(col.in_(select(pk[0]).where(where))).values({col.name: None})
            )
        elif child is not table:
            _delete_where(conn, child, col.in_(select(pk[0]).where(where)), shas)
    return conn.execute(delete(table).where(where)).rowcount


def delete_tickets(
    conn: Connection, rows: list[Row[Any]], actor: str, now: datetime
) -> dict[str, int]:
    """Remove these tickets and all that hangs on them; blobs only no other row uses."""
    done = {"tickets": 0, "articles": 0, "blobs": 0}
    shas: set[str] = set()
    for i in range(0, len(rows), CHUNK):
        chunk = rows[i : i + CHUNK]
        ids = [r.id for r in chunk]
        done["articles"] += conn.execute(
            select(func.count()).where(articles.c.ticket_id.in_(ids))
        ).scalar_one()
        done["tickets"] += _delete_where(conn, tickets, tickets.c.id.in_(ids), shas)
        for r in chunk:  # on no ticket: the ticket is gone, the record of its removal stays
            audit(
                conn,
                None,
                actor,
                "mass-delete",
                now,
                ticket=r.id,
                title=r.title,
                requester=r.requester_addr,
                queue=r.queue,
            )
    users = _referencing(blobs)
    candidates = sorted(shas)
    for i in range(0, len(candidates), CHUNK):
        chunk = candidates[i : i + CHUNK]
        unused = blobs.c.sha256.in_(chunk)
        for col in users:
            unused = unused & ~exists(select(col).where(col == blobs.c.sha256))
        done["blobs"] += conn.execute(delete(blobs).where(unused)).rowcount
    return done
