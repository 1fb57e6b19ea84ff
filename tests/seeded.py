"""A database seeded with six tickets whose figures are known by hand (search, mass
actions, stats). NOW is Wednesday 2026-11-18 12:00 UTC: the week began on Monday the
16th, yesterday is the 17th, the month began on the 1st.

id queues          status   pri assignee requester           created     notes
1  support         new      50  -        carla@example.com   11-18 11:00 blob X
2  billing+support open     80  alice    bob@corp.example    11-17 10:00 billing,urgent; FR
                                                                         breached, answered
3  sales           closed   40  -        dan@corp.example    11-02 09:00 closed 11-05; blob X
4  support         on-hold  60  alice    eve@other.example   10-20 08:00 dns; SLA paused
5  support         open     90  -        carla@example.com   11-16 09:00 FR breached, unanswered
6  billing         resolved 50  -        frank@corp.example  11-17 15:00
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from mailgate.config.model import Config
from mailgate.db import engine as db
from mailgate.db.models import Attachment, TicketSla
from mailgate.store.articles import add_article, put_blob
from mailgate.store.tickets import add_tags, insert_ticket, update_ticket
from tests.harness import load, write_config

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
SHARED = b"%PDF-1.4 the same file in two tickets"
SHARED_SHA = hashlib.sha256(SHARED).hexdigest()


@dataclass(frozen=True)
class Seed:
    title: str
    queues: tuple[str, ...]
    status: str
    priority: int
    assignee: str | None
    requester: str
    created: datetime
    body: str
    tags: tuple[str, ...] = ()
    category: str = ""
    closed: datetime | None = None
    answered: datetime | None = None
    sla: str = ""  # "" no row | fr-breached | paused


def _at(day: int, hour: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


SEEDS = (
    Seed("Printer is broken", ("support",), "new", 50, None, "carla@example.com",
         _at(18, 11), "Hello, my printer makes a grinding noise."),
    Seed("Invoice wrong", ("billing", "support"), "open", 80, "alice", "bob@corp.example",
         _at(17, 10), "The invoice total is wrong twice.", tags=("billing", "urgent"),
         category="invoices", answered=_at(17, 14), sla="fr-breached"),
    Seed("Quote request", ("sales",), "closed", 40, None, "dan@corp.example",
         _at(2, 9), "Please send a quote for 10 servers.", closed=_at(5, 9)),
    Seed("DNS zone", ("support",), "on-hold", 60, "alice", "eve@other.example",
         _at(20, 8, month=10), "The records of the zone for café are missing.",
         tags=("dns",), sla="paused"),
    Seed("Server down", ("support",), "open", 90, None, "carla@example.com",
         _at(16, 9), "Our server is down since this morning.", sla="fr-breached"),
    Seed("Refund", ("billing",), "resolved", 50, None, "frank@corp.example",
         _at(17, 15), "Thanks for the refund."),
)  # fmt: skip


def _sla_row(tid: int, s: Seed) -> dict:
    breached = s.created + timedelta(hours=4)
    return {
        "ticket_id": tid,
        "m_queue": s.queues[0],
        "m_status": s.status,
        "m_updated_at": s.created,
        "m_assignee": s.assignee,
        "tier_seen": "L1",
        "set_priority": s.priority,
        "class_priority": s.priority,
        "base_priority": s.priority,
        "steps_done": 0,
        "resp_start": s.created,
        "res_start": s.created,
        "tier_start": s.created,
        "fr_breached_at": breached if s.sla == "fr-breached" else None,
        "paused_since": s.created if s.sla == "paused" else None,
    }


def seed(engine: Engine) -> list[int]:
    """The six tickets above, each with one inbound article; their ids."""
    ids = []
    with engine.begin() as conn:
        for n, s in enumerate(SEEDS, 1):
            tid = insert_ticket(
                conn,
                title=s.title,
                requester_addr=s.requester,
                requester_name="",
                queues=s.queues,
                type="email",
                priority=s.priority,
                now=s.created,
            )
            update_ticket(
                conn,
                tid,
                {
                    "status": s.status,
                    "assignee": s.assignee,
                    "category": s.category,
                    "closed_at": s.closed,
                    "first_response_at": s.answered,
                    "updated_at": s.closed or s.answered or s.created,
                },
            )
            add_tags(conn, tid, s.tags)
            raw = f"Subject: {s.title}\r\n\r\n{s.body}\r\n".encode()
            raw_sha = hashlib.sha256(raw).hexdigest()
            put_blob(conn, raw_sha, raw)
            aid = add_article(
                conn,
                ticket_id=tid,
                kind="inbound",
                body=s.body,
                now=s.created,
                dedupe_key=f"seed-{n}",
                message_id=f"<seed-{n}@example.com>",
                raw_sha256=raw_sha,
                from_addr=s.requester,
                subject=s.title,
            )
            if n in (1, 3):
                put_blob(conn, SHARED_SHA, SHARED)
                conn.execute(
                    insert(Attachment.__table__),
                    {
                        "article_id": aid,
                        "blob_sha256": SHARED_SHA,
                        "filename": "same.pdf",
                        "content_type": "application/pdf",
                        "size": len(SHARED),
                    },
                )
            if s.sla:
                conn.execute(insert(TicketSla.__table__), _sla_row(tid, s))
            ids.append(tid)
    return ids


def seeded_config(root: Path, database_url: str = "") -> Config:
    return load(write_config(root, database_url=database_url))


def seeded_database(request: pytest.FixtureRequest, root: Path) -> Iterator[tuple[Config, Engine]]:
    """The body of a fixture parametrized "sqlite" / "postgresql": config and seeded engine."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else ""
    cfg = seeded_config(root, url)
    engine = db.connect(cfg.database_url)
    seed(engine)
    yield cfg, engine
    engine.dispose()
