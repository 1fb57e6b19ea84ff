"""The audit log: one row per thing that happened to a ticket, by whom."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, insert

from mailgate.db.models import AuditEvent
from mailgate.store.batch import current

audit_events: Table = AuditEvent.__table__  # type: ignore[assignment]
_INSERT = insert(audit_events)


def audit(
    conn: Connection, ticket_id: int | None, actor: str, action: str, now: datetime, **detail: Any
) -> None:
    row = {"ticket_id": ticket_id, "at": now, "actor": actor, "action": action, "detail": detail}
    batch = current(conn)
    if batch is not None:
        batch.defer(_INSERT, row)  # nothing in a batch reads the audit log back
    else:
        conn.execute(_INSERT, row)
