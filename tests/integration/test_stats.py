"""`mailgate stats`: the ticket statistics of the seeded database (tests/seeded.py) equal
the figures counted by hand, per queue and in total."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest

from mailgate.cli.main import main as cli_main
from mailgate.store.ticket_stats import ticket_stats
from tests.seeded import NOW, seeded_database


def figures(month, week, yesterday, today, unassigned, open_total, breached, by_status):
    return {
        "received": {"month": month, "week": week, "yesterday": yesterday, "today": today},
        "unassigned": unassigned,
        "open_total": open_total,
        "sla_breached": breached,
        "open": by_status,
    }


# NOW is Wednesday 2026-11-18 12:00 UTC; see the table in tests/seeded.py
BY_HAND = {
    "total": figures(5, 4, 2, 1, 2, 4, 1, {"new": 1, "open": 2, "on-hold": 1}),
    "queues": {
        "billing": figures(2, 2, 2, 0, 0, 1, 0, {"open": 1}),
        "sales": figures(1, 0, 0, 0, 0, 0, 0, {}),
        "support": figures(3, 3, 1, 1, 2, 4, 1, {"new": 1, "open": 2, "on-hold": 1}),
    },
}


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded(request, tmp_path):
    yield from seeded_database(request, tmp_path)


def test_the_figures_equal_the_hand_count(seeded):
    _, engine = seeded
    with engine.connect() as conn:
        got = ticket_stats(conn, NOW, queues=("sales", "support", "billing"))
    assert got["total"] == BY_HAND["total"]
    assert got["queues"] == BY_HAND["queues"]


def test_days_and_weeks_begin_in_the_time_zone_asked_for(seeded):
    _, engine = seeded
    with engine.connect() as conn:
        got = ticket_stats(conn, NOW, ZoneInfo("Asia/Tokyo"))["total"]["received"]
    # midnight in Tokyo is 15:00 UTC the day before: ticket 6 (11-17 15:00) is "today"
    assert got == {"month": 5, "week": 4, "yesterday": 1, "today": 2}


def test_a_queue_without_tickets_is_listed_with_zeros(seeded):
    _, engine = seeded
    with engine.connect() as conn:
        got = ticket_stats(conn, NOW, queues=("empty",))["queues"]["empty"]
    assert got == figures(0, 0, 0, 0, 0, 0, 0, {})


def test_the_command_prints_json_and_tables(seeded, capsys, monkeypatch):
    cfg, _ = seeded
    assert cli_main(["-c", str(cfg.path), "stats", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)["tickets"]
    # what does not depend on the day the test runs
    for name, expected in [("total", BY_HAND["total"]), *BY_HAND["queues"].items()]:
        got = out["total"] if name == "total" else out["queues"][name]
        for key in ("unassigned", "open_total", "sla_breached", "open"):
            assert got[key] == expected[key], (name, key)
    monkeypatch.setenv("COLUMNS", "200")
    assert cli_main(["-c", str(cfg.path), "stats", "--tz", "Europe/Berlin"]) == 0
    text = capsys.readouterr().out
    assert "tickets received (Europe/Berlin)" in text and "open tickets by status" in text
    assert "articles" in text and "spool waiting" in text  # the counts are still there
    assert cli_main(["-c", str(cfg.path), "stats", "--tz", "Mars/Olympus"]) == 2
