"""When a queue last auto-responded to a sender (the RFC 3834 rate limit's memory)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mailgate.db.models import AutoResponseLog

autoresponse_log: Table = AutoResponseLog.__table__  # type: ignore[assignment]

_LAST_AUTORESPONSE = select(autoresponse_log.c.last_sent_at).where(
    autoresponse_log.c.queue == bindparam("queue"), autoresponse_log.c.sender == bindparam("sender")
)


def last_autoresponse(conn: Connection, queue: str, sender: str) -> datetime | None:
    return conn.execute(_LAST_AUTORESPONSE, {"queue": queue, "sender": sender}).scalar()


@functools.cache
def _autoresponse_upsert(dialect: str) -> Any:
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = ins(autoresponse_log)
    return stmt.on_conflict_do_update(
        index_elements=["queue", "sender"],
        set_={"last_sent_at": stmt.excluded.last_sent_at, "count": autoresponse_log.c.count + 1},
    )


def record_autoresponse(conn: Connection, queue: str, sender: str, now: datetime) -> None:
    conn.execute(
        _autoresponse_upsert(conn.dialect.name),
        {"queue": queue, "sender": sender, "last_sent_at": now, "count": 1},
    )
