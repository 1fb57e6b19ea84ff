"""What the report is computed from: plain rows the store reads for one month (and the
month before, for the trends). Pure data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """'2026-11' -> Month(2026, 11); ValueError naming the expected form."""
        m = _MONTH_RE.match(text.strip())
        if not m or not 1 <= int(m[2]) <= 12:
            raise ValueError(f"{text!r} is not a month like 2026-11")
        return cls(int(m[1]), int(m[2]))

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.next().start

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    def days(self) -> list[date]:
        first, n = self.start.date(), (self.end - self.start).days
        return [date.fromordinal(first.toordinal() + i) for i in range(n)]


@dataclass(frozen=True)
class TicketRow:
    """A ticket received in the month."""

    id: int
    queue: str
    title: str
    body: str  # the start of the first customer mail's new text
    created_at: datetime
    first_response_at: datetime | None
    done_at: datetime | None  # resolved, else closed
    priority: int  # the priority that picks the SLA class (without automatic growth)
    complexity: str
    category: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class LabelRow:
    """A ticket of the month before: only what the trends compare."""

    id: int
    category: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class AnswerRow:
    """An agent's answer to a customer (an outbound article)."""

    ticket_id: int
    agent: str
    at: datetime


@dataclass(frozen=True)
class EventRow:
    """An escalation (the SLA sweep's or an agent's #escalate) or a reopen, in the month."""

    ticket_id: int
    queue: str
    kind: str  # escalated | reopened
    actor: str  # an agent's name, or "mailgate"
    at: datetime


@dataclass(frozen=True)
class RatingRow:
    """A satisfaction rating given in the month."""

    ticket_id: int
    queue: str
    agent: str | None
    rating: int
    comment: str
    at: datetime


@dataclass(frozen=True)
class ReportRows:
    month: Month
    tickets: tuple[TicketRow, ...]
    previous: tuple[LabelRow, ...]
    answers: tuple[AnswerRow, ...]  # in the month, or to a ticket of the month
    events: tuple[EventRow, ...]
    ratings: tuple[RatingRow, ...]
