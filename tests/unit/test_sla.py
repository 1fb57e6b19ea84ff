"""The [sla] table and the business-hours calendar: pure, table-driven."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailgate.config.checks import queue_problems
from mailgate.config.errors import ConfigError
from mailgate.config.model import Queue
from mailgate.config.sections import parse_section
from mailgate.config.sla import ClassBounds, SlaSettings, parse_range
from mailgate.scheduler.calendar import FAR_PAST, BusinessCalendar, describe_minutes, thresholds

BERLIN = ZoneInfo("Europe/Berlin")
H = 3600.0


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)


def settings(**kw: object) -> SlaSettings:
    base = {"timezone": "Europe/Berlin", "holidays": ["2026-03-04"]}  # a Wednesday
    return SlaSettings.model_validate(base | kw)


CAL = BusinessCalendar.of(settings())  # Mon-Fri 09:00-17:00 Berlin, Wednesday 4 March 2026 off


SOURCE = Path("/etc/mailgate/queues/support.toml")


def parse_sla(table: dict | None) -> SlaSettings | None:
    """The `[sla]` table as config.load types it; ConfigError with its problems."""
    problems: list[str] = []
    s = parse_section(SOURCE, "sla", table, SlaSettings, problems)
    if problems:
        raise ConfigError(problems)
    return s


def queue(sla: SlaSettings | None) -> Queue:
    from mailgate.config.schema import AutoResponseSettings, CloseSettings, PrioritySettings

    return Queue(
        name="support",
        addresses=("support@example.test",),
        subject_tag="support",
        from_name="Support",
        description="",
        autoresponse=AutoResponseSettings(),
        priority=PrioritySettings(),
        close=CloseSettings(),
        source=SOURCE,
        sla=sla,
    )


# -- settings -----------------------------------------------------------------------------
def test_no_table_means_no_sla_and_an_empty_table_means_defaults():
    assert parse_sla(None) is None
    s = parse_sla({})
    assert s is not None and s.enabled
    assert (s.first_response.critical, s.first_response.high) == (15, 60)
    assert (s.first_response.medium, s.first_response.low) == (240, 480)
    assert s.tiers.L2 == 720 and s.update_hours == 24


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "sla.timezone: unknown time zone 'Mars/Olympus'"),
        ({"business_hours": ["9-17"]}, "sla.business_hours: '9-17' is not a range"),
        ({"business_hours": ["17:00-09:00"]}, "ends before it starts"),
        ({"business_hours": ["09:00-13:00", "12:00-17:00"]}, "sla.business_hours: ranges overlap"),
        ({"business_days": []}, "sla.business_days: at least one business day"),
        ({"business_days": ["mon", "funday"]}, "sla.business_days[1]:"),
        ({"holidays": ["2026-02-30"]}, "sla.holidays[0]:"),
        ({"classes": {"critical": 50, "high": 70}}, "sla.classes: need 1 < medium < high"),
        ({"first_response": {"critical": -1}}, "sla.first_response.critical:"),
        ({"first_response": {"urgent": 5}}, "sla.first_response.urgent: unknown key"),
        ({"tiers": {"L1": 60}}, "sla.tiers.L1: unknown key"),
        ({"priority_growth_per_hour": -2}, "sla.priority_growth_per_hour:"),
        ({"shift_ends": ["25:00"]}, "sla.shift_ends: 25:00 is not a time of day"),
        ({"review_link": "trustpilot"}, "sla.review_link: must be an http(s) URL"),
        ({"colour": "red"}, "sla.colour: unknown key"),
    ],
)
def test_errors_name_file_key_and_reason(table: dict, message: str):
    with pytest.raises(ConfigError) as e:
        parse_sla(table)
    text = str(e.value)
    assert text.startswith("/etc/mailgate/queues/support.toml: sla.")
    assert message in text
    assert "Value error" not in text


def test_escalate_queue_must_exist():
    problems = queue_problems([queue(SlaSettings(escalate_queue="escalated"))])
    assert problems == [
        "/etc/mailgate/queues/support.toml: sla.escalate_queue: no queue named 'escalated'"
    ]


@pytest.mark.parametrize(
    ("priority", "cls"),
    [(99, "critical"), (90, "critical"), (89, "high"), (70, "high"), (69, "medium"),
     (40, "medium"), (39, "low"), (1, "low")],
)  # fmt: skip
def test_priority_classes(priority: int, cls: str):
    b = ClassBounds()
    assert b.class_of(priority) == cls
    lo, hi = b.ranges()[cls]
    assert (lo is None or lo <= priority) and (hi is None or priority <= hi)


def test_range_parsing():
    assert parse_range("09:00-17:30") == (540, 1050)
    assert parse_range("00:00-24:00") == (0, 1440)
    with pytest.raises(ValueError):
        parse_range("24:00-24:00")


# -- calendar -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (berlin(2026, 3, 2, 9), berlin(2026, 3, 2, 17), 8),  # one Monday
        (berlin(2026, 3, 2, 8), berlin(2026, 3, 2, 9, 30), 0.5),  # before opening
        (berlin(2026, 3, 2, 16), berlin(2026, 3, 3, 10), 2),  # over a night
        (berlin(2026, 3, 3, 9), berlin(2026, 3, 5, 9), 8),  # the Wednesday holiday
        (berlin(2026, 3, 6, 16), berlin(2026, 3, 9, 10), 2),  # over a weekend
        (berlin(2026, 3, 2, 9), berlin(2026, 3, 9, 9), 32),  # a week with a holiday
        (berlin(2026, 3, 7, 9), berlin(2026, 3, 8, 18), 0),  # a weekend
        (berlin(2026, 3, 3, 12), berlin(2026, 3, 3, 11), 0),  # backwards
    ],
)
def test_business_time(start: datetime, end: datetime, hours: float):
    assert CAL.business_seconds(start, end) == hours * H


def test_instants_before_walks_back_over_nights_weekends_and_holidays():
    now = berlin(2026, 3, 9, 9, 15)  # Monday
    got = CAL.instants_before(now, [15 * 60, H, 8 * H, 17 * H])
    assert got == [
        berlin(2026, 3, 9, 9, 0),
        berlin(2026, 3, 6, 16, 15),
        berlin(2026, 3, 6, 9, 15),
        berlin(2026, 3, 3, 16, 15),  # Thursday, then Tuesday: Wednesday is a holiday
    ]
    for t, want in zip(got, [15 * 60, H, 8 * H, 17 * H], strict=True):
        assert CAL.business_seconds(t, now) == want


def test_threshold_is_the_latest_instant_that_used_the_target():
    now = berlin(2026, 3, 2, 10, 15)
    t = CAL.instant_before(now, 15 * 60)
    assert t == berlin(2026, 3, 2, 10, 0)
    assert CAL.business_seconds(t, now) >= 15 * 60
    assert CAL.business_seconds(t + timedelta(seconds=1), now) < 15 * 60
    # a clock started outside business hours used the target as soon as 09:15
    assert CAL.instant_before(berlin(2026, 3, 2, 9, 15), 15 * 60) == berlin(2026, 3, 2, 9, 0)


def test_add_is_the_inverse_of_instant_before():
    start = berlin(2026, 3, 3, 16, 30)  # Tuesday
    due = CAL.add(start, 4 * H)
    assert due == berlin(2026, 3, 5, 12, 30)  # Thursday: the holiday is skipped
    assert CAL.instant_before(due, 4 * H) == start
    assert CAL.add(start, 0) == start


def test_shift_moves_a_clock_past_a_pause():
    start = berlin(2026, 3, 2, 9)
    # 2 h used, paused Monday 11:00 until Tuesday 14:00: 2 h used at Tuesday 14:00
    moved = CAL.shift(start, berlin(2026, 3, 2, 11), berlin(2026, 3, 3, 14))
    assert moved == berlin(2026, 3, 3, 12)
    assert CAL.business_seconds(moved, berlin(2026, 3, 3, 14)) == 2 * H
    # nothing used before the pause: the clock starts at the resume
    weekend = CAL.shift(berlin(2026, 3, 7, 10), berlin(2026, 3, 7, 11), berlin(2026, 3, 9, 10))
    assert weekend == berlin(2026, 3, 9, 10)


def test_dst_change_keeps_local_hours():
    # Europe/Berlin moves to summer time on Sunday 29 March 2026
    before = CAL.intervals(date(2026, 3, 27))[0]
    after = CAL.intervals(date(2026, 3, 30))[0]
    assert before[0] == datetime(2026, 3, 27, 8, tzinfo=UTC)
    assert after[0] == datetime(2026, 3, 30, 7, tzinfo=UTC)
    assert CAL.business_seconds(berlin(2026, 3, 27, 9), berlin(2026, 3, 30, 17)) == 16 * H


def test_round_the_clock_calendar():
    cal = BusinessCalendar.of(
        settings(
            business_days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            business_hours=["00:00-24:00"],
            holidays=[],
        )
    )
    start = datetime(2026, 3, 28, 12, tzinfo=UTC)
    assert cal.business_seconds(start, start + timedelta(days=3)) == 72 * H
    assert cal.instant_before(start, 15 * 60) == start - timedelta(minutes=15)


def test_split_day_and_unreachable_targets():
    cal = BusinessCalendar.of(settings(business_hours=["09:00-12:00", "13:00-17:00"]))
    assert cal.business_seconds(berlin(2026, 3, 2, 11), berlin(2026, 3, 2, 14)) == 2 * H
    assert cal.add(berlin(2026, 3, 2, 11, 30), H) == berlin(2026, 3, 2, 13, 30)
    assert cal.instants_before(berlin(2026, 3, 2, 10), [1e12]) == [FAR_PAST]


def test_shift_ends_are_on_business_days():
    end, prev = CAL.shift_ends(berlin(2026, 3, 5, 18), [17 * 60])  # Thursday evening
    assert (end, prev) == (berlin(2026, 3, 5, 17), berlin(2026, 3, 3, 17))
    end, prev = CAL.shift_ends(berlin(2026, 3, 9, 12), [13 * 60, 17 * 60])  # Monday noon
    assert (end, prev) == (berlin(2026, 3, 6, 17), berlin(2026, 3, 6, 13))


def test_thresholds_for_one_queue():
    s = settings(priority_growth_per_hour=2)
    now = berlin(2026, 3, 2, 12)
    th = thresholds(s, CAL, now)
    assert th.first_response["critical"] == berlin(2026, 3, 2, 11, 45)
    assert th.first_response["high"] == berlin(2026, 3, 2, 11)
    assert th.resolution["critical"] == berlin(2026, 2, 27, 16)  # 3 h Monday, 1 h Friday
    assert th.tiers == {"L2": CAL.instant_before(now, 12 * H)}  # L3 = 0: no budget
    assert len(th.growth) == 98
    assert th.growth[:3] == (
        berlin(2026, 3, 2, 11, 30),
        berlin(2026, 3, 2, 11),
        berlin(2026, 3, 2, 10, 30),
    )
    assert list(th.growth) == sorted(th.growth, reverse=True)
    off = thresholds(s.model_copy(update={"priority_growth_per_hour": 0}), CAL, now)
    assert off.growth == ()


def test_small_helpers():
    assert describe_minutes(15) == "15 min"
    assert describe_minutes(240) == "4 h"
    assert describe_minutes(90) == "1 h 30 min"
