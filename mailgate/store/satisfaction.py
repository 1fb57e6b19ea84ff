"""The satisfaction surveys: asked with a resolving or closing mail, answered by a rating
reply (pipeline/rating.py recognises it), shown by `tickets show` and the report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from mailgate.db.models_satisfaction import satisfaction_surveys

s = satisfaction_surveys.c


@dataclass(frozen=True)
class Survey:
    id: int
    ticket_id: int
    queue: str
    agent: str | None
    requester_addr: str
    trigger: str
    asked_at: datetime
    rating: int | None
    comment: str
    rated_at: datetime | None

    def describe(self) -> str:
        """One line for `tickets show`."""
        asked = f"satisfaction survey ({self.trigger}) asked {self.asked_at:%Y-%m-%d %H:%M}"
        if self.rating is None or self.rated_at is None:
            return f"{asked}: not rated yet"
        said = f": {self.comment!r}" if self.comment else ""
        return f"{asked}: rated {self.rating}/5 on {self.rated_at:%Y-%m-%d %H:%M}{said}"


def ask(
    conn: Connection,
    *,
    ticket_id: int,
    queue: str,
    agent: str | None,
    requester_addr: str,
    trigger: str,
    now: datetime,
) -> int:
    """Record that the customer was asked for a rating (in the mail's transaction)."""
    row = {
        "ticket_id": ticket_id,
        "queue": queue,
        "agent": agent,
        "requester_addr": requester_addr.lower(),
        "trigger": trigger,
        "asked_at": now,
        "comment": "",
    }
    return int(conn.execute(insert(satisfaction_surveys).returning(s.id), row).scalar_one())


def latest(conn: Connection, ticket_id: int) -> Survey | None:
    """The ticket's most recent survey (the one a rating reply answers), if any."""
    row = conn.execute(
        select(*_COLUMNS).where(s.ticket_id == ticket_id).order_by(s.id.desc()).limit(1)
    ).first()
    return Survey(*row) if row else None


def of_ticket(conn: Connection, ticket_id: int) -> list[Survey]:
    rows = conn.execute(select(*_COLUMNS).where(s.ticket_id == ticket_id).order_by(s.id))
    return [Survey(*r) for r in rows]


def rate(
    conn: Connection, survey_id: int, rating: int, comment: str, article_id: int, now: datetime
) -> None:
    """Store the customer's rating; a later rating reply to the same survey replaces it."""
    conn.execute(
        update(satisfaction_surveys)
        .where(s.id == survey_id)
        .values(rating=rating, comment=comment[:2000], rated_at=now, article_id=article_id)
    )


_COLUMNS = (
    s.id,
    s.ticket_id,
    s.queue,
    s.agent,
    s.requester_addr,
    s.trigger,
    s.asked_at,
    s.rating,
    s.comment,
    s.rated_at,
)
