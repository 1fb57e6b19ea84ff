"""Tickets with known figures for `mailgate report`: written with Core inserts the way
the worker, the agents' path, the sweeps and the survey leave them (tests and bench)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from mailgate.db.models_satisfaction import satisfaction_surveys
from mailgate.store.articles import articles
from mailgate.store.audit import audit_events
from mailgate.store.tickets import ticket_tags, tickets


def ticket_values(
    *,
    queue: str,
    created: datetime,
    title: str,
    requester: str,
    answers: Sequence[tuple[str, datetime]],
    done: datetime | None,
    priority: int,
    complexity: str,
    category: str,
) -> dict[str, Any]:
    """A tickets row as the worker and the agents' answers leave it."""
    return {
        "title": title,
        "requester_addr": requester,
        "requester_name": "",
        "queue": queue,
        "status": "resolved" if done else "open",
        "type": "email",
        "priority": priority,
        "sticky": False,
        "tier": "L1",
        "category": category,
        "complexity": complexity,
        "created_at": created,
        "updated_at": done or created,
        "first_response_at": answers[0][1] if answers else None,
        "last_customer_at": created,
        "last_answer_at": answers[-1][1] if answers else None,
        "resolved_at": done,
    }


def article_rows(
    tid: int,
    title: str,
    body: str,
    requester: str,
    created: datetime,
    answers: Sequence[tuple[str, datetime]],
    answer_from: str = "support@example.test",
) -> list[dict[str, Any]]:
    """The customer's first mail and each agent's answer (authored outbound articles)."""
    mail = {"ticket_id": tid, "subject": title, "message_id": "", "to_addrs": [], "cc_addrs": []}
    rows = [
        {**mail, "kind": "inbound", "body_text": body, "new_text": body, "author": "",
         "from_addr": requester, "created_at": created}
    ]  # fmt: skip
    rows += [
        {**mail, "kind": "outbound", "body_text": "answer", "new_text": "", "author": agent,
         "from_addr": answer_from, "created_at": at}
        for agent, at in answers
    ]  # fmt: skip
    return rows


def seed_ticket(
    conn: Connection,
    *,
    queue: str,
    created: datetime,
    title: str,
    body: str,
    requester: str = "customer@example.com",
    answers: Sequence[tuple[str, datetime]] = (),
    done: datetime | None = None,
    priority: int = 50,
    complexity: str = "",
    category: str = "",
    tags: Sequence[str] = (),
    events: Sequence[tuple[str, str, datetime, dict[str, Any]]] = (),
    rating: tuple[str | None, int, str, datetime] | None = None,
) -> int:
    """One ticket: its first mail, the agents' answers (the first sets first_response_at),
    audit events (action, actor, at, detail) and a rated survey (agent, score, comment, at)."""
    values = ticket_values(
        queue=queue, created=created, title=title, requester=requester, answers=answers,
        done=done, priority=priority, complexity=complexity, category=category,
    )  # fmt: skip
    tid = conn.execute(insert(tickets).returning(tickets.c.id), values).scalar_one()
    rows = article_rows(tid, title, body, requester, created, answers)
    conn.execute(insert(articles), rows)
    if tags:
        conn.execute(insert(ticket_tags), [{"ticket_id": tid, "tag": t} for t in tags])
    for action, actor, at, detail in events:
        conn.execute(
            insert(audit_events),
            {"ticket_id": tid, "at": at, "actor": actor, "action": action, "detail": detail},
        )
    if rating is not None:
        agent, score, comment, at = rating
        conn.execute(
            insert(satisfaction_surveys),
            {
                "ticket_id": tid,
                "queue": queue,
                "agent": agent,
                "requester_addr": requester,
                "trigger": "resolved",
                "asked_at": done or at,
                "rating": score,
                "comment": comment,
                "rated_at": at,
            },
        )
    return tid
