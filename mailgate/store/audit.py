"""The audit log: one row per thing that happened to a ticket, by whom."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, insert

from mailgate.db.models import AuditEvent

audit_events: Table = AuditEvent.__table__  # type: ignore[assignment]


def audit(
    conn: Connection, ticket_id: int | None, actor: str, action: str, now: datetime, **detail: Any
) -> None:
    conn.execute(
        insert(audit_events),
        {"ticket_id": ticket_id, "at": now, "actor": actor, "action": action, "detail": detail},
    )
