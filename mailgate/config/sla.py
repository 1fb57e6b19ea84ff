"""The `[sla]` table of a queue file: business hours, targets, tier budgets (docs/scheduler.md).

Errors read ``FILE: sla.KEY: reason``. Pure: the calendar math that uses these settings is
scheduler/calendar.py's.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from mailgate.config.base import Strict

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
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


class ClassBounds(Strict):
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


class FirstResponseTargets(Strict):
    """Business minutes until the first answer, per class (0 = no target)."""

    critical: Minutes = 15
    high: Minutes = 60
    medium: Minutes = 240
    low: Minutes = 480


class ResolutionTargets(Strict):
    """Business minutes until resolved, per class (0 = no target)."""

    critical: Minutes = 240
    high: Minutes = 480
    medium: Minutes = 960
    low: Minutes = 1920


class TierBudgets(Strict):
    """Business minutes a tier has before the ticket moves up (0 = it never does)."""

    L2: Minutes = 720
    L3: Minutes = 0


class SlaSettings(Strict):
    enabled: bool = True
    timezone: str = "UTC"
    business_days: list[Weekday] = ["mon", "tue", "wed", "thu", "fri"]
    business_hours: list[str] = ["09:00-17:00"]
    holidays: list[Annotated[date, Field(strict=False)]] = []  # TOML dates or "2026-12-25"
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

    def weekday_numbers(self) -> frozenset[int]:
        """The business days as date.weekday() numbers (0 = Monday)."""
        return frozenset(WEEKDAYS.index(d) for d in self.business_days)

    def hour_ranges(self) -> tuple[tuple[int, int], ...]:
        """The business hours as sorted (start, end) minutes from local midnight."""
        return tuple(sorted(parse_range(r) for r in self.business_hours))

    def shift_minutes(self) -> tuple[int, ...]:
        return tuple(sorted(parse_time(t) for t in self.shift_ends))
