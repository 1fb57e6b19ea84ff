"""The governor against a mail loop and a backscatter storm (fake clock, real sink).

Naive vacation responders on both sides (tests/responders.py), each reply worded a little
differently so that only the governor stands in the way (the loop breakers catch alike
replies: test_loop_breakers.py): the exchange per ticket stays within the caps over a
simulated day, and the same exchange with the governor switched off goes past them (so
the count can fail). 400 forged senders to one queue:
acknowledgements within the queue's budget, the rest held, listed, released by hand.
The same responders for 60 s against the running daemon (real sockets, real clock).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from email.utils import getaddresses

import pytest
from sqlalchemy import func, select

from mailgate.cli.main import main as cli_main
from mailgate.db import engine as db
from mailgate.db.models import OutboxRow
from mailgate.outgoing.sender import Sender
from mailgate.pgp.keyring import Keyrings
from mailgate.pipeline.steps import Pipeline
from mailgate.pipeline.worker import Worker
from mailgate.spool import Envelope, Spool
from tests.harness import load, message, running, write_config
from tests.responders import Clock, exchange, vacation_reply

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOTIFY = {q: "[agent_mail]\nnotify = true\n" for q in ("support", "billing", "sales")}
CUSTOMER = "carla@customers.example"
AGENT = "alice@example.test"


def _with_governor(tmp_path, sink, governor: str):  # type: ignore[no-untyped-def]
    path = write_config(tmp_path, relay_port=sink.port, queue_extra=NOTIFY)
    path.write_text(path.read_text() + f"\n[governor]\n{governor}\n")
    return path


def _loop(
    tmp_path, sink, governor: str, hours: float, vary: bool = True
) -> Counter[tuple[str, str]]:
    cfg = load(_with_governor(tmp_path, sink, governor))
    first = message(sender=CUSTOMER, subject="My invoice is wrong", date=START)
    got = exchange(cfg, sink, first, {CUSTOMER, AGENT}, hours=hours, start=START, vary=vary)
    print(f"\nloop over {hours} h with [governor] {governor or 'defaults'}: {dict(got)}")
    return got


def test_naive_responders_on_both_sides_stay_within_the_caps_for_a_day(tmp_path, smtp_sink):
    got = _loop(tmp_path, smtp_sink, "", hours=24)
    to_customer = sum(n for (rcpt, _), n in got.items() if rcpt == CUSTOMER)
    notifications = sum(n for (rcpt, k), n in got.items() if rcpt == AGENT and "notify" in k)
    # defaults: 5 notifications per agent per ticket per hour break the loop in the first hour
    assert 1 <= notifications <= 5
    assert got[(CUSTOMER, "ack")] == 1
    assert to_customer <= 1 + 5


def test_the_same_loop_without_the_governor_goes_past_the_caps(tmp_path, smtp_sink):
    got = _loop(tmp_path, smtp_sink, "enabled = false", hours=3)
    notifications = sum(n for (rcpt, k), n in got.items() if rcpt == AGENT and "notify" in k)
    assert notifications > 5 * 3


@pytest.mark.parametrize("n", [400])
def test_forged_senders_get_acknowledgements_within_the_queue_budget(
    tmp_path, smtp_sink, capsys, n
):
    cfg = load(_with_governor(tmp_path, smtp_sink, "ack_per_queue_minute = 50"))
    engine = db.connect(cfg.database_url)
    spool = Spool(cfg.spool_dir)
    worker = Worker(cfg, engine, spool, Pipeline(cfg, lambda: START, keyrings=Keyrings()))
    for i in range(n):
        raw = message(sender=f"forged{i}@victims{i}.example", subject=f"spam {i}", date=START)
        spool.put(raw, Envelope(source="smtp", rcpt_tos=("sales@example.test",)))
    worker.drain()
    Sender(cfg, engine, lambda: START, keyrings=Keyrings()).send_due()
    with engine.connect() as conn:
        by_status = dict(
            conn.execute(
                select(OutboxRow.status, func.count())
                .where(OutboxRow.kind == "ack")
                .group_by(OutboxRow.status)
            ).all()
        )
    print(f"\n{n} forged senders: acks {by_status}, relay got {len(smtp_sink.messages)}")
    assert by_status == {"sent": 50, "held": n - 50}
    assert len(smtp_sink.messages) == 50
    assert cli_main(["--config", str(cfg.path), "outbox", "list", "--held"]) == 0
    listed = capsys.readouterr().out
    assert f"{n - 50} row(s)" in listed and "ack_per_queue_minute" in listed
    assert cli_main(["--config", str(cfg.path), "stats"]) == 0
    assert f"{n - 50} / 0" in capsys.readouterr().out
    with engine.connect() as conn:
        held = conn.scalars(select(OutboxRow.id).where(OutboxRow.status == "held")).all()
    assert cli_main(["--config", str(cfg.path), "outbox", "drop", str(held[0])]) == 0
    assert cli_main(["--config", str(cfg.path), "outbox", "release", "all"]) == 0
    assert f"{n - 51} row(s) released" in capsys.readouterr().out
    Sender(cfg, engine, keyrings=Keyrings()).send_due()
    assert len(smtp_sink.messages) == n - 1


def test_naive_responders_against_the_running_daemon_for_60_s(tmp_path, smtp_sink):
    """Real sockets both ways, real clock: the loop is bounded by the caps while it runs."""
    cfg = load(_with_governor(tmp_path, smtp_sink, ""))
    clock = Clock(START)
    got: Counter[tuple[str, str]] = Counter()
    with running(cfg) as d:
        d.send(message(sender=CUSTOMER, subject="My invoice is wrong"), sender=CUSTOMER)
        seen, end = 0, time.monotonic() + 60
        while time.monotonic() < end:
            new, seen = smtp_sink.messages[seen:], len(smtp_sink.messages)
            for c in new:
                kind = str(c.message["Message-ID"]).split(".")[1]
                for rcpt in c.rcpt_tos:
                    got[(rcpt, kind)] += 1
                    if rcpt in (CUSTOMER, AGENT):
                        clock.now = datetime.now(UTC)
                        raw = vacation_reply(c, rcpt, clock, "Re: {subject}", vary=True)
                        to = getaddresses([str(c.message["Reply-To"] or c.message["From"])])[0][1]
                        d.send(raw, rcpts=[to], sender=rcpt)
            time.sleep(0.2)
    print(f"\n60 s against the daemon: {dict(got)}")
    notifications = sum(n for (rcpt, k), n in got.items() if rcpt == AGENT and "notify" in k)
    to_customer = sum(n for (rcpt, _), n in got.items() if rcpt == CUSTOMER)
    assert 1 <= notifications <= 5  # notify_per_agent_ticket_hour
    assert got[(CUSTOMER, "ack")] == 1 and to_customer <= 1 + 5
