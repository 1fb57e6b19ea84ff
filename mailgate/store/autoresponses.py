"""When a queue last auto-responded to a sender (the RFC 3834 rate limit's memory)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mailgate.db.models import AutoResponseLog
from mailgate.store import fast
from mailgate.store.batch import BatchState, current

autoresponse_log: Table = AutoResponseLog.__table__  # type: ignore[assignment]

_LAST_AUTORESPONSE = select(autoresponse_log.c.last_sent_at).where(
    autoresponse_log.c.queue == bindparam("queue"), autoresponse_log.c.sender == bindparam("sender")
)


@functools.cache
def _of_senders(n: int) -> Any:
    c = autoresponse_log.c
    return select(c.queue, c.sender, c.last_sent_at).where(c.sender.in_(fast.in_binds(n)))


def last_autoresponse(conn: Connection, queue: str, sender: str) -> datetime | None:
    batch = current(conn)
    if batch is not None and sender in batch.senders_read:
        return batch.autoresponses.get((queue, sender))
    return conn.execute(_LAST_AUTORESPONSE, {"queue": queue, "sender": sender}).scalar()


def read_autoresponses(conn: Connection, batch: BatchState, senders: list[str]) -> None:
    """When each of a batch's senders was last auto-responded to, by any queue: one read."""
    senders = [s for s in dict.fromkeys(senders) if s and s not in batch.senders_read]
    for queue, sender, at in fast.rows_in(conn, _of_senders, senders):
        batch.autoresponses[(queue, sender)] = at
    batch.senders_read.update(senders)


@functools.cache
def _autoresponse_upsert(dialect: str) -> Any:
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = ins(autoresponse_log)
    return stmt.on_conflict_do_update(
        index_elements=["queue", "sender"],
        set_={"last_sent_at": stmt.excluded.last_sent_at, "count": autoresponse_log.c.count + 1},
    )


def record_autoresponse(conn: Connection, queue: str, sender: str, now: datetime) -> None:
    row = {"queue": queue, "sender": sender, "last_sent_at": now, "count": 1}
    stmt = _autoresponse_upsert(conn.dialect.name)
    batch = current(conn)
    if batch is not None and sender in batch.senders_read:
        batch.autoresponses[(queue, sender)] = now
        batch.defer(stmt, row)  # rows run one by one in order: the count adds up
    else:
        conn.execute(stmt, row)
