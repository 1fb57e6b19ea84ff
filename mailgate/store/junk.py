"""The quarantine: mail no person wrote that belongs to no ticket, kept whole with the reason.

`release` marks a row released; the command then spools its raw bytes again, and the
pipeline lets a released message through its junk checks (`is_released`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Table, select, update

from mailgate.db.models_junk import JunkMail
from mailgate.store.sql import insert_ignore

junk: Table = JunkMail.__table__  # type: ignore[assignment]


def add_junk(
    conn: Connection,
    *,
    category: str,
    reason: str,
    raw: bytes,
    raw_sha256: str,
    from_addr: str,
    subject: str,
    message_id: str,
    queues: Sequence[str],
    envelope: dict[str, Any],
    now: datetime,
) -> bool:
    """Quarantine a message; False if it is there already (one row per raw hash)."""
    inserted = insert_ignore(
        conn,
        junk,
        {
            "created_at": now,
            "category": category,
            "reason": reason[:4000],
            "raw_sha256": raw_sha256,
            "from_addr": from_addr[:320],
            "subject": subject,
            "message_id": message_id[:998],
            "queues": list(queues),
            "envelope": envelope,
            "raw": raw,
        },
    )
    return inserted > 0


def is_released(conn: Connection, raw_sha256: str) -> bool:
    return (
        conn.execute(
            select(junk.c.id).where(
                junk.c.raw_sha256 == raw_sha256, junk.c.released_at.is_not(None)
            )
        ).first()
        is not None
    )


def list_junk(conn: Connection, *, include_released: bool = False, limit: int = 100) -> list[Row]:
    cols = [c for c in junk.c if c.name not in ("raw", "envelope")]
    q = select(*cols).order_by(junk.c.id.desc()).limit(limit)
    if not include_released:
        q = q.where(junk.c.released_at.is_(None))
    return list(conn.execute(q))


def get_junk(conn: Connection, junk_id: int) -> Row | None:
    return conn.execute(select(junk).where(junk.c.id == junk_id)).first()


def mark_released(conn: Connection, junk_id: int, now: datetime) -> None:
    conn.execute(update(junk).where(junk.c.id == junk_id).values(released_at=now))
