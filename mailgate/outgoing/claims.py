"""Which outbox rows a sender takes next, and the lease that keeps other senders off them.

Priority classes (the `priority` column, set when a row is written): 0 customer-facing
mail (acknowledgements, answers, closing and escalation notices), 1 agent notifications,
2 reminders and digests. A batch takes the oldest due rows of class 0 first, then 1, then
2, but every class that has due rows gets at least an eighth of the batch: no class starves.

Claiming is one short transaction: pick the due, unleased rows (``FOR UPDATE SKIP LOCKED``
on PostgreSQL, so two senders never pick one row; SQLite serialises writers with BEGIN
IMMEDIATE), stamp them with a fresh token and a lease, read back what carries the token.
A sender that dies keeps its rows only until the lease runs out; they are then sent again
with the same Message-ID (at-least-once, never lost). On SQLite (one daemon per database)
a starting sender takes every claim back at once (`release_all`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, Row, and_, or_, select, update

from mailgate.store.outbox import outbox

CLASSES = (0, 1, 2)

COLUMNS = (
    outbox.c.id,
    outbox.c.mail_from,
    outbox.c.rcpt_tos,
    outbox.c.rcpt_results,
    outbox.c.raw,
    outbox.c.message_id,
    outbox.c.attempts,
    outbox.c.deadline,
    outbox.c.ticket_id,
    outbox.c.kind,
    outbox.c.priority,
    outbox.c.next_attempt_at,
)


def _due(now: datetime):  # type: ignore[no-untyped-def]
    return and_(
        outbox.c.status == "pending",
        outbox.c.next_attempt_at <= now,
        or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now),
    )


def share(available: dict[int, list[int]], limit: int) -> list[int]:
    """Row ids for one batch: each non-empty class its reserve, then strictly by class."""
    reserve = max(1, limit // 8)
    chosen: list[int] = []
    for c in CLASSES[1:]:
        chosen += available.get(c, [])[:reserve]
    for c in CLASSES:
        for rid in available.get(c, []):
            if len(chosen) >= limit:
                return chosen
            if rid not in chosen:
                chosen.append(rid)
    return chosen


def claim(engine: Engine, now: datetime, limit: int, lease_seconds: float) -> list[Row]:
    """Lease up to `limit` due rows to this caller; returned in sending order."""
    with engine.begin() as conn:
        return claim_in(conn, now, limit, lease_seconds)


def claim_in(conn: Connection, now: datetime, limit: int, lease_seconds: float) -> list[Row]:
    """`claim` inside the caller's transaction (the sender records a batch's results and
    claims the next batch in one transaction: one write lock per batch, not two)."""
    token = uuid.uuid4().hex
    due = _due(now)
    available: dict[int, list[int]] = {}
    for c in CLASSES:
        available[c] = list(
            conn.scalars(
                select(outbox.c.id)
                .where(due, outbox.c.priority == c)
                .order_by(outbox.c.next_attempt_at, outbox.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
    ids = share(available, limit)
    if not ids:
        return []
    conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(ids), due)
        .values(claim_token=token, claimed_until=now + timedelta(seconds=lease_seconds))
    )
    rows = conn.execute(select(*COLUMNS).where(outbox.c.claim_token == token)).all()
    return sorted(rows, key=lambda r: (r.priority, r.next_attempt_at, r.id))


def release_all(engine: Engine) -> int:
    """Take back every claim: for a sender starting on SQLite, where one daemon owns the
    database, a claim left over is a killed sender's (on PostgreSQL leases run out)."""
    with engine.begin() as conn:
        return conn.execute(
            update(outbox)
            .where(outbox.c.claim_token.is_not(None), outbox.c.status == "pending")
            .values(claim_token=None, claimed_until=None)
        ).rowcount
