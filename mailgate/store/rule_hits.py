"""The routing rules a ticket's first mail matched, written with the ticket, read by
`tickets show`."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, Table, insert, select

from mailgate.db.models_rules import TicketRuleHit
from mailgate.queues.rules import RuleHit
from mailgate.store import fast
from mailgate.store.batch import current

rule_hits: Table = TicketRuleHit.__table__  # type: ignore[assignment]


_INSERT_HIT = insert(rule_hits)


def record_hits(conn: Connection, ticket_id: int, hits: Iterable[RuleHit]) -> None:
    """Written with a new ticket (the worker's hot path: store/fast.py)."""
    batch = current(conn)
    for i, h in enumerate(hits):
        row = {"ticket_id": ticket_id, "position": i, "rule": h.rule[:200]}
        if batch is not None:  # with its ticket, at the batch's flush
            batch.hold(rule_hits.name, _INSERT_HIT, {**row, "reasons": list(h.reasons)})
        else:
            fast.write(conn, _INSERT_HIT, {**row, "reasons": list(h.reasons)})


def hits_of(conn: Connection, ticket_id: int) -> list[RuleHit]:
    c = rule_hits.c
    q = select(c.rule, c.reasons).where(c.ticket_id == ticket_id).order_by(c.position)
    return [RuleHit(r.rule, tuple(r.reasons)) for r in conn.execute(q)]
