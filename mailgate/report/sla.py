"""First-response and resolution times against a queue's SLA targets, in business time
(the queue's `[sla]` calendar, the targets of the ticket's priority class). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailgate.config.sla import SlaSettings
from mailgate.report.rows import TicketRow
from mailgate.scheduler.calendar import BusinessCalendar


@dataclass(frozen=True)
class Targets:
    """A queue's SLA, ready to judge tickets."""

    sla: SlaSettings
    calendar: BusinessCalendar

    @classmethod
    def of(cls, sla: SlaSettings) -> Targets:
        return cls(sla, BusinessCalendar.of(sla))

    def first_response_minutes(self, priority: int) -> int:
        return getattr(self.sla.first_response, self.sla.classes.class_of(priority))

    def resolution_minutes(self, priority: int) -> int:
        return getattr(self.sla.resolution, self.sla.classes.class_of(priority))

    def hours(self) -> dict[str, dict[str, float]]:
        """The targets per class, in business hours, for the report's tables."""
        classes = ("critical", "high", "medium", "low")
        return {
            "first_response": {c: getattr(self.sla.first_response, c) / 60 for c in classes},
            "resolution": {c: getattr(self.sla.resolution, c) / 60 for c in classes},
        }


def verdict(
    t: Targets, minutes: int, start: datetime, done: datetime | None, as_of: datetime
) -> bool | None:
    """True: done within the target; False: done late, or still open past it; None: no
    target, or open and still within it."""
    if minutes <= 0:
        return None
    limit = minutes * 60
    if done is not None:
        return t.calendar.business_seconds(start, done) <= limit
    return False if t.calendar.business_seconds(start, as_of) > limit else None


def first_response_met(t: Targets | None, row: TicketRow, as_of: datetime) -> bool | None:
    if t is None:
        return None
    minutes = t.first_response_minutes(row.priority)
    return verdict(t, minutes, row.created_at, row.first_response_at, as_of)


def resolution_met(t: Targets | None, row: TicketRow, as_of: datetime) -> bool | None:
    if t is None:
        return None
    return verdict(t, t.resolution_minutes(row.priority), row.created_at, row.done_at, as_of)
