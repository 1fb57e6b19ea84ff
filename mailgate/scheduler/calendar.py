"""Business-hours calendar math and the thresholds the sweeps compare against. Pure.

The calendar answers the questions the sweeps ask, for a whole queue at once: how much
business time lies between two instants, and which instant lies a given business time
before (or after) another. The sweeps turn those instants into column comparisons, so no
ticket is ever looked at one by one in Python (docs/scheduler.md, "How it stays fast").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

from mailgate.config.sla import SlaSettings

CLASSES = ("critical", "high", "medium", "low")
# an instant before any ticket: a threshold the calendar cannot reach matches nothing
FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
MAX_WALK_DAYS = 366 * 30


@dataclass(frozen=True)
class BusinessCalendar:
    """Business hours in a time zone: weekdays, daily ranges (local minutes), holidays."""

    tz: ZoneInfo
    days: frozenset[int]  # 0 = Monday
    hours: tuple[tuple[int, int], ...]  # sorted, non-overlapping [start, end) minutes
    holidays: frozenset[date]

    @classmethod
    def of(cls, s: SlaSettings) -> BusinessCalendar:
        """The calendar of a queue's `[sla]` settings."""
        return cls(
            ZoneInfo(s.timezone), s.weekday_numbers(), s.hour_ranges(), frozenset(s.holidays)
        )

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.tz).date()

    def intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The business intervals of one local day, as aware UTC instants."""
        return _day_intervals(self, day)

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """Business time between two instants (0 when end <= start)."""
        if end <= start:
            return 0.0
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        total = 0.0
        day, last = self.local_date(start), self.local_date(end)
        while day <= last:
            for a, b in self.intervals(day):
                lo, hi = max(a, start), min(b, end)
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += timedelta(days=1)
        return total

    def instants_before(self, end: datetime, targets: Sequence[float]) -> list[datetime]:
        """For each target (seconds, ascending), the latest T with business_seconds(T, end)
        >= target. A ticket whose clock started at or before T has used up the target."""
        out: list[datetime] = []
        if not targets:
            return out
        end = end.astimezone(UTC)
        pending = iter(targets)
        want = next(pending)
        acc = 0.0
        day = self.local_date(end)
        for _ in range(MAX_WALK_DAYS):
            for a, b in reversed(self.intervals(day)):
                hi = min(b, end)
                length = (hi - a).total_seconds()
                if length <= 0:
                    continue
                while want <= acc + length:
                    out.append(hi - timedelta(seconds=want - acc))
                    want = next(pending, -1.0)
                    if want < 0:
                        return out
                acc += length
            day -= timedelta(days=1)
        return out + [FAR_PAST] * (len(targets) - len(out))

    def instant_before(self, end: datetime, seconds: float) -> datetime:
        if seconds <= 0:
            return end.astimezone(UTC)
        return self.instants_before(end, [seconds])[0]

    def add(self, start: datetime, seconds: float) -> datetime:
        """The earliest instant T with business_seconds(start, T) >= seconds."""
        start = start.astimezone(UTC)
        if seconds <= 0:
            return start
        acc = 0.0
        day = self.local_date(start)
        for _ in range(MAX_WALK_DAYS):
            for a, b in self.intervals(day):
                lo = max(a, start)
                length = (b - lo).total_seconds()
                if length <= 0:
                    continue
                if acc + length >= seconds:
                    return lo + timedelta(seconds=seconds - acc)
                acc += length
            day += timedelta(days=1)
        return FAR_FUTURE

    def shift(self, start: datetime, paused_from: datetime, paused_until: datetime) -> datetime:
        """Move a clock's start so the paused span no longer counts: the returned S has
        business_seconds(S, paused_until) == business_seconds(start, paused_from)."""
        if paused_until <= paused_from:
            return start
        if start >= paused_until:
            return start
        used = self.business_seconds(start, min(paused_from, paused_until))
        return self.instant_before(paused_until, used) if used > 0 else paused_until

    def shift_ends(self, now: datetime, minutes: Iterable[int]) -> tuple[datetime, datetime]:
        """The last end of a shift at or before `now` on a business day, and the one
        before it: (end, previous end). FAR_PAST where none is found."""
        mins = sorted(minutes, reverse=True)
        found: list[datetime] = []
        day = self.local_date(now)
        for _ in range(MAX_WALK_DAYS):
            if self.is_business_day(day):
                for m in mins:
                    at = _local(day, m, self.tz)
                    if at <= now:
                        found.append(at)
                        if len(found) == 2:
                            return found[0], found[1]
            day -= timedelta(days=1)
        found += [FAR_PAST] * (2 - len(found))
        return found[0], found[1]


def _local(day: date, minute: int, tz: ZoneInfo) -> datetime:
    if minute >= 1440:
        day, minute = day + timedelta(days=1), minute - 1440
    local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz)
    return local.astimezone(UTC)


@lru_cache(maxsize=8192)
def _day_intervals(cal: BusinessCalendar, day: date) -> tuple[tuple[datetime, datetime], ...]:
    if not cal.is_business_day(day):
        return ()
    out = []
    for s, e in cal.hours:
        a, b = _local(day, s, cal.tz), _local(day, e, cal.tz)
        if b > a:  # a range swallowed by a DST change counts for nothing
            out.append((a, b))
    return tuple(out)


def describe_minutes(minutes: float) -> str:
    """15 -> '15 min', 240 -> '4 h', 90 -> '1 h 30 min'."""
    m = round(minutes)
    h, rest = divmod(m, 60)
    if not h:
        return f"{rest} min"
    return f"{h} h {rest} min" if rest else f"{h} h"


class ClassMinutes(Protocol):
    """Business minutes per SLA class (0 = no target)."""

    critical: int
    high: int
    medium: int
    low: int


class TierMinutes(Protocol):
    """Business minutes a tier has before the ticket moves up (0 = it never does)."""

    L2: int
    L3: int


class Targets(Protocol):
    """What `thresholds` reads of a queue's `[sla]` settings (SlaSettings has it)."""

    first_response: ClassMinutes
    resolution: ClassMinutes
    tiers: TierMinutes
    priority_growth_per_hour: float


@dataclass(frozen=True)
class Thresholds:
    """Instants that stand for per-ticket business-time tests at one `now`, per queue."""

    first_response: dict[str, datetime]  # class -> latest clock start that has breached
    resolution: dict[str, datetime]
    tiers: dict[str, datetime]  # tier -> latest tier start that has used its budget
    growth: tuple[datetime, ...]  # k-1 -> latest start that has grown by k steps


def thresholds(s: Targets, cal: BusinessCalendar, now: datetime) -> Thresholds:
    """Every instant the sweeps compare against, from one backward walk of the calendar."""
    wanted: dict[tuple[str, str], float] = {}
    for cls in CLASSES:
        if getattr(s.first_response, cls):
            wanted["fr", cls] = getattr(s.first_response, cls) * 60.0
        if getattr(s.resolution, cls):
            wanted["res", cls] = getattr(s.resolution, cls) * 60.0
    for tier in ("L2", "L3"):
        if getattr(s.tiers, tier):
            wanted["tier", tier] = getattr(s.tiers, tier) * 60.0
    steps = 98 if s.priority_growth_per_hour > 0 else 0
    for k in range(1, steps + 1):
        wanted["grow", str(k)] = k * 3600.0 / s.priority_growth_per_hour
    keys = sorted(wanted, key=lambda k: wanted[k])
    instants = dict(zip(keys, cal.instants_before(now, [wanted[k] for k in keys]), strict=True))
    return Thresholds(
        first_response={c: t for (kind, c), t in instants.items() if kind == "fr"},
        resolution={c: t for (kind, c), t in instants.items() if kind == "res"},
        tiers={c: t for (kind, c), t in instants.items() if kind == "tier"},
        growth=tuple(instants["grow", str(k)] for k in range(1, steps + 1)),
    )
