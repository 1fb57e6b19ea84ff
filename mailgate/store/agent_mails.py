"""The agent mails already processed: a replayed Message-ID or signed body runs nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from mailgate.db.models import agent_mails


def seen_message(conn: Connection, message_key: str) -> bool:
    query = select(agent_mails.c.id).where(agent_mails.c.message_key == message_key)
    return conn.execute(query).first() is not None


def seen_content(conn: Connection, content_key: str) -> bool:
    query = select(agent_mails.c.id).where(agent_mails.c.content_key == content_key)
    return conn.execute(query).first() is not None


def record_agent_mail(
    conn: Connection,
    *,
    message_key: str,
    content_key: str | None,
    message_id: str,
    agent: str,
    ticket_id: int | None,
    now: datetime,
    outcome: str,
    raw_sha256: str,
    detail: dict[str, Any],
) -> None:
    conn.execute(
        insert(agent_mails),
        {
            "message_key": message_key,
            "content_key": content_key,
            "message_id": message_id[:998],
            "agent": agent,
            "ticket_id": ticket_id,
            "received_at": now,
            "outcome": outcome,
            "raw_sha256": raw_sha256,
            "detail": detail,
        },
    )


def recent_outcome(conn: Connection, agent: str, outcome: str, since: datetime) -> bool:
    """Has an agent mail of `agent` had `outcome` since `since`?"""
    c = agent_mails.c
    found = conn.execute(
        select(c.id).where(c.agent == agent, c.outcome == outcome, c.received_at >= since).limit(1)
    ).first()
    return found is not None
