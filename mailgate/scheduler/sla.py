"""The `[sla]` table of a queue file and the business-hours calendar math. Pure.

config.py keeps the raw table (`Queue.sla`); this module owns its meaning. Errors read like
config.py's: ``FILE: sla.KEY: reason``. The calendar answers the questions the sweeps ask,
for a whole queue at once: how much business time lies between two instants, and which
instant lies a given business time before (or after) another. The sweeps turn those
instants into column comparisons, so no ticket is ever looked at one by one in Python.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mailgate.config.load import Config, ConfigError, Queue, format_validation

log = logging.getLogger(__name__)

CLASSES = ("critical", "high", "medium", "low")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# an instant before any ticket: a threshold the calendar cannot reach matches nothing
FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
MAX_WALK_DAYS = 366 * 30

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Minutes = Annotated[int, Field(ge=0, le=525_600)]
_RANGE_RE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_TIME_RE = re.compile(r"^(\d{2}):(\d{2})$")


def _minute_of_day(hh: str, mm: str, *, allow_24: bool) -> int:
    h, m = int(hh), int(mm)
    if m > 59 or h > 24 or (h == 24 and (m or not allow_24)):
        raise ValueError(f"{hh}:{mm} is not a time of day")
    return h * 60 + m


def parse_range(text: str) -> tuple[int, int]:
    """'09:00-17:30' -> (540, 1050) minutes from local midnight; '24:00' may end a range."""
    m = _RANGE_RE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a range like '09:00-17:00'")
    start = _minute_of_day(m[1], m[2], allow_24=False)
    end = _minute_of_day(m[3], m[4], allow_24=True)
    if end <= start:
        raise ValueError(f"{text!r} ends before it starts")
    return start, end


def parse_time(text: str) -> int:
    """'17:00' -> 1020 minutes from local midnight."""
    m = _TIME_RE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a time like '17:00'")
    return _minute_of_day(m[1], m[2], allow_24=False)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassBounds(_Strict):
    """The lowest priority of each class; everything below `medium` is low."""

    critical: Annotated[int, Field(ge=1, le=99)] = 90
    high: Annotated[int, Field(ge=1, le=99)] = 70
    medium: Annotated[int, Field(ge=1, le=99)] = 40

    @model_validator(mode="after")
    def _ordered(self) -> ClassBounds:
        if not 1 < self.medium < self.high < self.critical:
            raise ValueError("need 1 < medium < high < critical (lowest priority of each class)")
        return self

    def ranges(self) -> dict[str, tuple[int | None, int | None]]:
        """class -> (lowest, highest) priority, None where open-ended."""
        return {
            "critical": (self.critical, None),
            "high": (self.high, self.critical - 1),
            "medium": (self.medium, self.high - 1),
            "low": (None, self.medium - 1),
        }

    def class_of(self, priority: int) -> str:
        if priority >= self.critical:
            return "critical"
        if priority >= self.high:
            return "high"
        return "medium" if priority >= self.medium else "low"


class FirstResponseTargets(_Strict):
    """Business minutes until the first answer, per class (0 = no target)."""

    critical: Minutes = 15
    high: Minutes = 60
    medium: Minutes = 240
    low: Minutes = 480


class ResolutionTargets(_Strict):
    """Business minutes until resolved, per class (0 = no target)."""

    critical: Minutes = 240
    high: Minutes = 480
    medium: Minutes = 960
    low: Minutes = 1920


class TierBudgets(_Strict):
    """Business minutes a tier has before the ticket moves up (0 = it never does)."""

    L2: Minutes = 720
    L3: Minutes = 0


class SlaSettings(_Strict):
    enabled: bool = True
    timezone: str = "UTC"
    business_days: list[Weekday] = ["mon", "tue", "wed", "thu", "fri"]
    business_hours: list[str] = ["09:00-17:00"]
    holidays: list[date] = []
    classes: ClassBounds = ClassBounds()
    first_response: FirstResponseTargets = FirstResponseTargets()
    resolution: ResolutionTargets = ResolutionTargets()
    tiers: TierBudgets = TierBudgets()
    priority_growth_per_hour: Annotated[float, Field(ge=0, le=99)] = 1.0
    escalate_queue: str = ""
    notify_customer: bool = True
    update_hours: Annotated[float, Field(ge=0, le=24 * 365)] = 24.0
    shift_ends: list[str] = []
    review_link: str = ""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r} (an IANA name like 'Europe/Berlin')") from e
        return v

    @field_validator("business_days")
    @classmethod
    def _days(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one business day is needed")
        if len(set(v)) != len(v):
            raise ValueError("a day is listed twice")
        return v

    @field_validator("business_hours")
    @classmethod
    def _hours(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one range like '09:00-17:00' is needed")
        ranges = sorted(parse_range(r) for r in v)
        for (_, end), (start, _) in zip(ranges, ranges[1:], strict=False):
            if start < end:
                raise ValueError("ranges overlap")
        return v

    @field_validator("shift_ends")
    @classmethod
    def _shift_ends(cls, v: list[str]) -> list[str]:
        for t in v:
            parse_time(t)
        if len(set(v)) != len(v):
            raise ValueError("a time is listed twice")
        return v

    @field_validator("review_link")
    @classmethod
    def _link(cls, v: str) -> str:
        v = v.strip()
        if v and not re.match(r"^https?://\S+$", v):
            raise ValueError("must be an http(s) URL without spaces")
        return v

    def calendar(self) -> BusinessCalendar:
        return BusinessCalendar(
            tz=ZoneInfo(self.timezone),
            days=frozenset(WEEKDAYS.index(d) for d in self.business_days),
            hours=tuple(sorted(parse_range(r) for r in self.business_hours)),
            holidays=frozenset(self.holidays),
        )

    def shift_minutes(self) -> tuple[int, ...]:
        return tuple(sorted(parse_time(t) for t in self.shift_ends))


# -- loading ------------------------------------------------------------------------------
def parse_sla(queue: Queue) -> SlaSettings | None:
    """The queue's validated `[sla]` table, None when it has none; else ConfigError."""
    if queue.sla is None:
        return None
    try:
        return SlaSettings.model_validate(queue.sla)
    except ValidationError as e:
        raise ConfigError(format_validation(queue.source, e, "sla")) from e


def sla_problems(config: Config) -> list[str]:
    """Every problem in every queue's `[sla]` table (empty when all are fine)."""
    problems: list[str] = []
    names = {q.name for q in config.queues}
    for q in config.queues:
        try:
            s = parse_sla(q)
        except ConfigError as e:
            problems.extend(e.problems)
            continue
        if s and s.escalate_queue and s.escalate_queue not in names:
            problems.append(f"{q.source}: sla.escalate_queue: no queue named {s.escalate_queue!r}")
    return problems


def sla_settings(config: Config) -> dict[str, SlaSettings]:
    """queue name -> settings of each queue with `[sla]`; ConfigError lists all problems."""
    problems = sla_problems(config)
    if problems:
        raise ConfigError(problems)
    out = {}
    for q in config.queues:
        s = parse_sla(q)
        if s is not None:
            out[q.name] = s
    return out


# -- the calendar -------------------------------------------------------------------------
@dataclass(frozen=True)
class BusinessCalendar:
    """Business hours in a time zone: weekdays, daily ranges (local minutes), holidays."""

    tz: ZoneInfo
    days: frozenset[int]  # 0 = Monday
    hours: tuple[tuple[int, int], ...]  # sorted, non-overlapping [start, end) minutes
    holidays: frozenset[date]

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


# -- small helpers for texts ---------------------------------------------------------------
def describe_minutes(minutes: float) -> str:
    """15 -> '15 min', 240 -> '4 h', 90 -> '1 h 30 min'."""
    m = round(minutes)
    h, rest = divmod(m, 60)
    if not h:
        return f"{rest} min"
    return f"{h} h {rest} min" if rest else f"{h} h"


@dataclass(frozen=True)
class Thresholds:
    """Instants that stand for per-ticket business-time tests at one `now`, per queue."""

    first_response: dict[str, datetime]  # class -> latest clock start that has breached
    resolution: dict[str, datetime]
    tiers: dict[str, datetime]  # tier -> latest tier start that has used its budget
    growth: tuple[datetime, ...]  # k-1 -> latest start that has grown by k steps


def thresholds(s: SlaSettings, cal: BusinessCalendar, now: datetime) -> Thresholds:
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
