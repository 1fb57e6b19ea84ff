"""What a plan's ticket change does to the ticket's row, its queues, CCs and tags."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from mailgate.agents.plan import TicketChange
from mailgate.store import tickets as store_tickets


def ticket_values(
    ch: TicketChange, answered: bool, before: Row[Any], now: datetime
) -> dict[str, Any]:
    """The tickets columns a plan sets: its changes, the answer's timestamps, the status."""
    values: dict[str, Any] = {"updated_at": now}
    if ch.assign:
        values["assignee"] = ch.assignee
    elif ch.queue or ch.tier:
        values["assignee"] = None  # moved or escalated: the new people pick it up
    for name in ("sticky", "priority", "title", "complexity", "queue", "tier"):
        value = getattr(ch, name)
        if value is not None:
            values[name] = value
    if ch.requester is not None:
        values.update(requester_addr=ch.requester, requester_name="")
    status = ch.status
    if answered:
        values["last_answer_at"] = now
        if before.first_response_at is None:
            values["first_response_at"] = now
        status = status or "answered"
    if status is None and ch.assign and ch.assignee and before.status == "new":
        status = "open"
    if status == "closed":
        values.update(status=status, closed_at=now)
    elif status == "resolved":
        values.update(status=status, resolved_at=now, closed_at=None)
    elif status is not None:
        values.update(status=status, closed_at=None, resolved_at=None)
    return values


def write_change(
    conn: Connection, before: Row[Any], ch: TicketChange, answered: bool, now: datetime
) -> None:
    """Apply the change (and an answer's timestamps) to the ticket `before` is the row of."""
    tid = before.id
    store_tickets.update_ticket(conn, tid, ticket_values(ch, answered, before, now))
    if ch.queue:
        store_tickets.add_queues(conn, tid, [ch.queue])
    if ch.cc_add:
        store_tickets.add_ccs(conn, tid, ch.cc_add)
    if ch.cc_remove:
        store_tickets.remove_ccs(conn, tid, ch.cc_remove)
    if ch.tag_add:
        store_tickets.add_tags(conn, tid, ch.tag_add)
    if ch.tag_remove:
        store_tickets.remove_tags(conn, tid, ch.tag_remove)
