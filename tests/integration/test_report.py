"""`mailgate report` over a seeded database with known figures: every number equals the
hand computation written next to it (November 2026; the 2nd is a Monday; support has an
[sla] in UTC, Mon-Fri 09-17, medium class: first response 4 h, resolution 16 h; billing
has none). On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailgate.cli.main import main as cli_main
from mailgate.cli.report import make_report
from mailgate.config.model import Config
from mailgate.db import engine as db
from mailgate.report.rows import Month
from tests.harness import load, write_config
from tests.report_seed import seed_ticket

NOV = Month(2026, 11)
NOW = datetime(2026, 12, 5, tzinfo=UTC)  # SLA judged as of the end of November


def at(day: int, hour: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


MAIL = "smtp error when sending email from outlook"


def seed(url: str) -> tuple[dict[str, int], str]:
    engine = db.connect(url)
    ids: dict[str, int] = {}
    with engine.begin() as c:
        ids["t1"] = seed_ticket(
            c, queue="support", created=at(2, 9), title="Cannot send email",
            body="Outlook says smtp error when sending email", answers=[("alice", at(2, 10))],
            done=at(2, 13), complexity="hard", category="email", tags=["dns", "email"],
            rating=("alice", 5, "great", at(3, 9)),
        )  # fmt: skip
        ids["t2"] = seed_ticket(
            c, queue="support", created=at(2, 10), title="Cannot send email", body=MAIL,
            answers=[("bob", at(2, 16)), ("alice", at(3, 10))], done=at(3, 10),
            complexity="medium", category="email", tags=["email"],
            events=[("reopened", "mailgate", at(4, 9), {})],
            rating=("bob", 2, "slow", at(5, 9)),
        )  # fmt: skip
        ids["t3"] = seed_ticket(
            c, queue="support", created=at(6, 16), title="Cannot send email",
            body="Sending email fails with smtp error in Outlook", answers=[("alice", at(9, 10))],
            complexity="lower", category="billing", tags=["billing"],
            events=[("escalated", "mailgate", at(10, 9), {"to_tier": "L2"})],
        )  # fmt: skip
        ids["t4"] = seed_ticket(
            c, queue="support", created=at(10, 9), title="Website down", body="my site returns 500",
            events=[
                ("command", "bob", at(10, 12), {"line": "#escalate tried a restart"}),
                ("command", "bob", at(10, 12), {"line": "#priority 80"}),
            ],
        )  # fmt: skip
        ids["t5"] = seed_ticket(
            c, queue="billing", created=at(15, 12), title="Refund please",
            body="please refund my last invoice", answers=[("carol", at(16, 12))],
            done=at(17, 12), complexity="medium", category="billing", tags=["refund"],
            rating=("carol", 4, "", at(18, 9)),
        )  # fmt: skip
        # October: the month before (tags and categories), and one answered in November
        seed_ticket(c, queue="support", created=at(20, 9, 10), title="Mail", body="x",
                    category="email", tags=["email", "dns"])  # fmt: skip
        seed_ticket(c, queue="billing", created=at(21, 9, 10), title="Refund", body="y",
                    category="billing", tags=["refund"])  # fmt: skip
        seed_ticket(c, queue="support", created=at(22, 9, 10), title="Mail 2", body="z",
                    category="email", tags=["email"])  # fmt: skip
        ids["t9"] = seed_ticket(
            c, queue="support", created=at(30, 10, 10), title="Old one", body="from october",
            answers=[("alice", at(2, 11))], complexity="hard",
        )  # fmt: skip
        # December: outside the report
        seed_ticket(c, queue="support", created=at(1, 9, 12), title="Cannot send email", body=MAIL,
                    answers=[("alice", at(1, 10, 12))])  # fmt: skip
    engine.dispose()
    return ids, url


def config(tmp_path: Path, url: str) -> Config:
    return load(write_config(tmp_path, database_url=url, queue_extra={"support": "[sla]\n"}))


def check_figures(r: dict, ids: dict[str, int]) -> None:
    assert r["month"] == "2026-11" and r["previous_month"] == "2026-10"
    assert r["as_of"] == "2026-12-01T00:00:00+00:00"
    total, queues = r["total"], {q["name"]: q for q in r["queues"]}
    support, billing = queues["support"], queues["billing"]
    assert set(queues) == {"support", "billing"}
    # received: t1-t4 in support, t5 in billing; resolved: t1, t2 / t5
    assert (support["received"], billing["received"], total["received"]) == (4, 1, 5)
    assert (support["resolved"], billing["resolved"], total["resolved"]) == (2, 1, 3)
    # first response hours: t1 1, t2 6, t3 66 (Fri 16:00 -> Mon 10:00), t5 24
    assert (support["frt_median_h"], support["frt_p90_h"]) == (6, 66)
    assert (billing["frt_median_h"], billing["frt_p90_h"]) == (24, 24)
    assert (total["frt_median_h"], total["frt_p90_h"]) == (15, 66)  # (6 + 24) / 2; rank 4 of 4
    # in business time: t1 60 min ok, t2 360 > 240 missed, t3 120 ok, t4 never answered: missed
    assert (support["fr_sla_pct"], billing["fr_sla_pct"], total["fr_sla_pct"]) == (50, None, 50)
    # resolution hours: t1 4, t2 24, t5 48; SLA: t1 240 and t2 480 min ok, t3 and t4 open past
    # 16 business hours: missed
    assert (support["resolution_median_h"], support["resolution_p90_h"]) == (14, 24)
    assert (total["resolution_median_h"], total["resolution_p90_h"]) == (24, 48)
    assert (support["res_sla_pct"], total["res_sla_pct"]) == (50, 50)
    # escalations: t3 by the SLA sweep, t4 by bob's #escalate (his #priority is not one)
    assert (support["escalations"], billing["escalations"], total["escalations"]) == (2, 0, 2)
    assert (support["reopen_pct"], billing["reopen_pct"], total["reopen_pct"]) == (25, 0, 20)
    # ratings 5 and 2 in support, 4 in billing
    assert (support["ratings"], support["rating_mean"], support["csat_pct"]) == (2, 3.5, 50)
    assert (billing["ratings"], billing["rating_mean"], billing["csat_pct"]) == (1, 4, 100)
    assert (total["ratings"], total["rating_mean"], total["csat_pct"]) == (3, 3.67, 66.7)
    # handled in November: t1 t2 t3 t9 (support), t5 (billing); weights hard 3 medium 2 lower 1
    assert (support["handled"], support["weighted"]) == (4, 9)
    assert (billing["handled"], billing["weighted"], total["weighted"]) == (1, 2, 11)
    assert support["targets_h"]["first_response"]["medium"] == 4
    assert billing["targets_h"] is None

    agents = {a["name"]: a for a in r["agents"]}
    assert list(agents) == ["alice", "bob", "carol"]
    alice, bob, carol = agents["alice"], agents["bob"], agents["carol"]
    # alice answered first on t1 and t3, last on t1 t2 t3 (owner), and t9 from October
    assert (alice["handled"], alice["first_responses"], alice["weighted"]) == (4, 2, 9)
    assert (alice["frt_median_h"], alice["frt_p90_h"], alice["fr_sla_pct"]) == (33.5, 66, 100)
    assert (alice["resolved"], alice["resolution_median_h"], alice["res_sla_pct"]) == (2, 14, 66.7)
    assert (alice["reopen_pct"], alice["escalations"]) == (33.3, 0)
    assert (alice["ratings"], alice["rating_mean"], alice["csat_pct"]) == (1, 5, 100)
    assert (bob["handled"], bob["first_responses"], bob["frt_median_h"]) == (1, 1, 6)
    assert (bob["fr_sla_pct"], bob["resolved"], bob["res_sla_pct"]) == (0, 0, None)
    assert (bob["escalations"], bob["reopen_pct"], bob["weighted"]) == (1, None, 2)
    assert (bob["ratings"], bob["rating_mean"], bob["csat_pct"]) == (1, 2, 0)
    assert (carol["frt_median_h"], carol["fr_sla_pct"], carol["resolution_median_h"]) == (
        24,
        None,
        48,
    )
    assert (carol["reopen_pct"], carol["csat_pct"], carol["weighted"]) == (0, 100, 2)

    # tags: email 2 (October 2), billing 1 (0), dns 1 (1), refund 1 (1)
    assert [(t["name"], t["count"], t["previous"], t["change"]) for t in r["tags"]] == [
        ("email", 2, 2, 0), ("billing", 1, 0, 1), ("dns", 1, 1, 0), ("refund", 1, 1, 0),
    ]  # fmt: skip
    assert [(t["name"], t["count"], t["previous"], t["change"]) for t in r["categories"]] == [
        ("billing", 2, 1, 1), ("email", 2, 2, 0),
    ]  # fmt: skip
    days = {d["date"]: d["count"] for d in r["volume_per_day"]}
    assert len(days) == 30 and sum(days.values()) == 5
    assert (days["2026-11-02"], days["2026-11-06"], days["2026-11-15"]) == (2, 1, 1)
    assert [b["count"] for b in r["frt_histogram"]] == [0, 1, 1, 0, 1, 1, 0]
    # the three "Cannot send email" tickets of November are one repetitive issue
    (issue,) = r["repetitive_issues"]
    assert issue["label"] == "Cannot send email" and issue["count"] == 3
    assert issue["examples"] == [ids["t1"], ids["t2"], ids["t3"]]
    assert [c["rating"] for c in r["rating_comments"]] == [2, 5]  # lowest first, with a comment


def test_report_figures_equal_the_hand_computation_on_sqlite(tmp_path: Path):
    ids, url = seed("sqlite:///" + str(tmp_path / "db.sqlite"))
    check_figures(make_report(config(tmp_path, url), NOV, now=NOW), ids)


def test_report_figures_equal_the_hand_computation_on_postgresql(tmp_path: Path, pg_url: str):
    ids, url = seed(pg_url)
    check_figures(make_report(config(tmp_path, url), NOV, now=NOW), ids)


def test_the_command_prints_json_and_tables_and_refuses_a_bad_month(tmp_path: Path, capsys):
    _, url = seed("sqlite:///" + str(tmp_path / "db.sqlite"))
    path = str(write_config(tmp_path, database_url=url, queue_extra={"support": "[sla]\n"}))
    assert cli_main(["--config", path, "report", "--month", "2026-11", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["total"]["received"] == 5 and r["queues"][0]["name"] == "billing"
    html = tmp_path / "report.html"
    assert cli_main(["--config", path, "report", "--month", "2026-11", "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "Per agent" in out and "Cannot send email" in out
    assert html.read_text().count("<svg") == 4 and "<script" not in html.read_text()
    with pytest.raises(SystemExit):
        cli_main(["--config", path, "report", "--month", "2026-13"])
    assert "not a month like 2026-11" in capsys.readouterr().err
