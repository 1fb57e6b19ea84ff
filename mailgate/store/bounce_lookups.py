"""What bounces/match.py needs from the database: our outbox rows by VERP row, by Message-ID
and by recipient and time, and the tickets that know a Message-ID."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, Row, Table, select

from mailgate.bounces.match import Lookups, Sent
from mailgate.bounces.verp import is_verp_shaped, verp_row
from mailgate.db.models import OutboxRow, SendLog, ThreadRef

outbox: Table = OutboxRow.__table__  # type: ignore[assignment]
send_log: Table = SendLog.__table__  # type: ignore[assignment]
thread_refs: Table = ThreadRef.__table__  # type: ignore[assignment]

_COLS = (
    outbox.c.id,
    outbox.c.ticket_id,
    outbox.c.kind,
    outbox.c.message_id,
    outbox.c.rcpt_tos,
    outbox.c.created_at,
)


def _sent(row: Row | None) -> Sent | None:
    if row is None:
        return None
    return Sent(
        row.id, row.ticket_id, row.kind, row.message_id, tuple(row.rcpt_tos), row.created_at
    )


def lookups(
    conn: Connection,
    secret: bytes,
    *,
    verp_candidates: Iterable[str],
    message_ids: Sequence[str],
    recipients: Sequence[str],
    now: datetime,
    window: timedelta,
) -> Lookups:
    verp = None
    forged = ""
    for address in verp_candidates:
        row_id = verp_row(secret, address)
        if row_id is not None:
            verp = _sent(conn.execute(select(*_COLS).where(outbox.c.id == row_id)).first())
            if verp is not None:
                break
        elif is_verp_shaped(address):
            forged = address
    by_mid = ticket_by_mid = None
    ids = [m for m in message_ids if m][:50]
    if ids:
        by_mid = _sent(conn.execute(select(*_COLS).where(outbox.c.message_id.in_(ids))).first())
        ticket_by_mid = conn.execute(
            select(thread_refs.c.ticket_id).where(thread_refs.c.message_id.in_(ids))
        ).scalar()
    by_rcpt = None
    addrs = [a.lower() for a in recipients if a][:50]
    if addrs:
        last = conn.execute(
            select(send_log.c.outbox_id)
            .where(
                send_log.c.address.in_(addrs),
                send_log.c.created_at >= now - window,
                send_log.c.created_at <= now,
                send_log.c.ticket_id.is_not(None),
            )
            .order_by(send_log.c.created_at.desc(), send_log.c.id.desc())
            .limit(1)
        ).scalar()
        if last is not None:
            by_rcpt = _sent(conn.execute(select(*_COLS).where(outbox.c.id == last)).first())
    return Lookups(verp, forged, by_mid, ticket_by_mid, by_rcpt)
