"""The thread step's reads by batch (Pipeline.read_ahead): the facts of the tickets a
batch names and their recent inbound texts, read once for the batch, answer exactly as
the per-message statements do.

The same messages are drained twice in the same batches and on the same clock: with the
read-ahead, and with it switched off (every follow-up then reads its ticket's facts and
recent texts on its own, as before). What the thread step was given (the lookups, the
choice, the loop breaker's earlier texts) must be equal message by message, and the
databases row by row. The batch has follow-ups of tickets it created, a follow-up that
reopens a resolved ticket and one after it, a closed ticket reopened, a CC stored before
it, a tag of no ticket, stored texts inside and outside each message's own window (more
than RECENT_LIMIT of them), and statements mid-batch that write the held rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, update

from mailgate.pipeline import steps
from mailgate.spool import Envelope
from mailgate.store import fast, lookups, repeats
from mailgate.store.articles import add_article
from mailgate.store.repeats import RECENT_LIMIT, REPEATS_WINDOW
from mailgate.store.tickets import ticket_ccs, tickets
from tests.harness import load, message, offline, write_config
from tests.integration.test_batch_ids import compared

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the second batch starts here
STEP = timedelta(minutes=20)  # between its messages
CLOCK_BACK, BACK = 6, timedelta(hours=2)  # the 6th message's clock is 2 hours before T
PIPE = Envelope(source="pipe", queue="support", received_at=T.timestamp())
CARLA, BOB, DORA, ERIN, CC = (
    "carla@example.com", "bob@example.org", "dora@example.net", "erin@example.com",
    "cc@example.com",
)  # fmt: skip
NOTIFY = {q: "[agent_mail]\nnotify = true\n" for q in ("support", "billing", "sales")}


@dataclass
class Seen:
    """What the thread step worked with, message by message."""

    choices: list[tuple[Any, ...]] = field(default_factory=list)
    earlier: list[tuple[str | None, list[str]]] = field(default_factory=list)
    statements: int = 0


def _first_batch() -> list[bytes]:
    old = T - timedelta(days=2)
    return [
        message(sender=CARLA, subject="Printer", message_id="<a1@example.com>", date=old),
        message(sender=BOB, subject="Invoice", message_id="<b1@example.org>", date=old),
        message(sender=DORA, subject="Login", message_id="<c1@example.net>", date=old),
    ]


def _between(engine: Engine) -> dict[str, int]:
    """After the first batch: B resolved, C closed, a CC on A, and stored texts from the
    senders on A and B: on A more than RECENT_LIMIT, the newest ids the oldest texts."""
    with engine.begin() as conn:
        ids = {title: tid for title, tid in conn.execute(select(tickets.c.title, tickets.c.id))}
        a, b, c = ids["Printer"], ids["Invoice"], ids["Login"]
        conn.execute(update(tickets).where(tickets.c.id == b).values(status="resolved"))
        closed = T - timedelta(days=1)
        conn.execute(
            update(tickets).where(tickets.c.id == c).values(status="closed", closed_at=closed)
        )
        conn.execute(insert(ticket_ccs).values(ticket_id=a, address=CC))
        since_ahead = T - REPEATS_WINDOW
        texts = [(a, CARLA, since_ahead + timedelta(hours=5), "Same text.")] * 5
        # in the read-ahead's window, not in the first message's: more recent by id
        texts += [(a, CARLA, since_ahead + timedelta(minutes=10), "Older.")] * RECENT_LIMIT
        texts += [(b, BOB, since_ahead + timedelta(minutes=50), "Bob again.")] * 2
        # before the read-ahead's window, inside that of a message whose clock went back
        texts += [(c, DORA, since_ahead - timedelta(hours=1), "Still no login.")]
        for tid, sender, at, body in texts:
            add_article(conn, ticket_id=tid, kind="inbound", body=body, now=at, from_addr=sender)
    return {"a": a, "b": b, "c": c}


def _second_batch(ids: dict[str, int]) -> list[bytes]:
    a, b = ids["a"], ids["b"]

    def follow_up(n: int, sender: str, parent: str, body: str, subject: str = "Re") -> bytes:
        mid = f"<f{n}@{sender.split('@')[1]}>"
        return message(sender=sender, subject=subject, body=body, message_id=mid,
                       in_reply_to=parent, date=T)  # fmt: skip

    return [
        follow_up(1, CARLA, "<a1@example.com>", "Same text.\n"),
        follow_up(2, BOB, "<none@example.org>", "Reopen it.\n", f"Re: [support #{b}] Invoice"),
        follow_up(3, BOB, "<b1@example.org>", "Bob again.\n"),
        message(
            sender=ERIN,
            subject="Scanner",
            message_id="<d1@example.com>",
            date=T,
            body="Scanner down.\n",
        ),
        follow_up(5, ERIN, "<d1@example.com>", "Scanner down.\n"),
        follow_up(6, DORA, "<c1@example.net>", "Still no login.\n", "Re: [support #999] x"),
        follow_up(7, CC, "<a1@example.com>", "Same text.\n", "FLUSH: a read of tickets"),
        follow_up(8, CARLA, "<f1@example.com>", "Same text.\n", f"Re: [support #{a}]"),
        follow_up(9, ERIN, "<f5@example.com>", "Scanner down.\n", "UPDATE: a ticket directly"),
        follow_up(10, BOB, "<f3@example.org>", "Bob again.\n"),
        follow_up(11, ERIN, "<d1@example.com>", "Scanner down.\n"),
    ]


def _recorded(monkeypatch: pytest.MonkeyPatch, seen: Seen, ahead: bool) -> None:
    """Record what the thread step is given; mid-batch, the statements of the subjects
    FLUSH and UPDATE (as an agent's command or a bounce would run them)."""
    choose, run_length, look_up = steps.choose, steps.run_length, steps.thread_lookups

    def choosing(sender, found, agents, now, *args, **kwargs):  # type: ignore[no-untyped-def]
        choice = choose(sender, found, agents, now, *args, **kwargs)
        seen.choices.append((sender, now, found, choice))
        return choice

    def counting(digest, earlier, *args):  # type: ignore[no-untyped-def]
        seen.earlier.append((digest, list(earlier)))
        return run_length(digest, earlier, *args)

    def looking(conn, parsed, *ahead):  # type: ignore[no-untyped-def]
        if parsed.subject.startswith("FLUSH"):
            conn.execute(select(func.count()).select_from(tickets))
        if parsed.subject.startswith("UPDATE"):
            conn.execute(update(tickets).where(tickets.c.title == "Scanner").values(priority=7))
        return look_up(conn, parsed, *ahead)

    monkeypatch.setattr(steps, "choose", choosing)
    monkeypatch.setattr(steps, "run_length", counting)
    monkeypatch.setattr(steps, "thread_lookups", looking)
    if not ahead:  # the clock is still asked, as with them: the same times on both sides
        monkeypatch.setattr(lookups, "read_facts_ahead", lambda *args: None)
        monkeypatch.setattr(lookups, "read_recent_ahead", lambda *args: None)
        monkeypatch.setattr(repeats, "_stored_ahead", lambda *args: None)  # the statement


def _drain(root: Path, db_url: str, ahead: bool, agents: bool) -> tuple[Engine, Seen]:
    queues = NOTIFY if agents else None
    cfg = write_config(root, database_url=db_url, batch_size=64, queue_extra=queues,
                       agents_toml=None if agents else "")  # fmt: skip
    engine, spool, worker = offline(load(cfg))
    clock = {"now": T - timedelta(days=2)}
    worker.pipeline.clock = lambda: clock["now"]
    for raw in _first_batch():
        spool.put(raw, PIPE)
    worker.drain()
    ids = _between(engine)
    seen = Seen()
    with pytest.MonkeyPatch.context() as mp:
        _recorded(mp, seen, ahead)
        process = worker.pipeline.process

        def later(conn, entry, raw, pre):  # type: ignore[no-untyped-def]
            n = len(seen.choices) + 1  # each message its own `now`, after the read-ahead's
            clock["now"] = T - BACK if n == CLOCK_BACK else T + n * STEP  # (one before it)
            return process(conn, entry, raw, pre)

        mp.setattr(worker.pipeline, "process", later)
        clock["now"] = T
        for raw in _second_batch(ids):
            spool.put(raw, PIPE)
        before = fast.StatementCount.n
        assert worker.process_batch(64).stored == 11
        seen.statements = fast.StatementCount.n - before
    return engine, seen


def _same(tmp: Path, url: Any, agents: bool = False) -> tuple[Seen, Seen]:
    (one, ahead), (other, alone) = (
        _drain(tmp / side, url(side), side == "ahead", agents) for side in ("ahead", "alone")
    )
    assert ahead.choices == alone.choices
    assert ahead.earlier == alone.earlier
    compared(one, other, ranked=one.dialect.name != "sqlite")
    return ahead, alone


def _check_the_batch(seen: Seen) -> None:
    """The cases the batch was written for are the ones it ran into."""
    by_sender = [(sender, choice) for sender, _, _, choice in seen.choices]
    assert len(by_sender) == 11
    reasons = [choice.reason for _, choice in by_sender]
    assert "to #" in reasons[1] and by_sender[1][1].reopen is False  # resolved: replied to
    assert by_sender[5][1].reopen is True  # the closed ticket, inside the reopen window
    assert seen.choices[5][1] == T - BACK
    assert seen.choices[5][2].tagged is None  # #999: no such ticket
    assert "follow-up" in reasons[6]  # the CC stored before the batch
    runs = [len(earlier) for _, earlier in seen.earlier]
    # message 1: the 5 recent texts (the RECENT_LIMIT newer ids are outside its window)
    assert runs[0] == 5
    assert seen.earlier[4] == (seen.earlier[4][0], ["Still no login."])  # before T's window
    assert max(runs) > 5  # held texts of the batch count too


def test_the_read_ahead_answers_as_each_follow_up_alone_on_sqlite(tmp_path):
    ahead, alone = _same(tmp_path, lambda side: "")
    _check_the_batch(ahead)
    assert ahead.statements < alone.statements


def test_the_read_ahead_answers_as_each_follow_up_alone_on_postgres(tmp_path, pg_databases):
    ahead, alone = _same(tmp_path, lambda side: pg_databases(f"ahead_{side}"))
    _check_the_batch(ahead)
    assert ahead.statements < alone.statements


def test_with_agents_notified_the_follow_ups_are_read_ahead_too(tmp_path):
    """Agents notified: the notifications wait in the batch for its held rows
    (store/batch.py, `Notices`), so the batch holds its rows and reads the follow-ups'
    facts ahead as it does without agents: the same answers, fewer statements."""
    ahead, alone = _same(tmp_path, lambda side: "", agents=True)
    _check_the_batch(ahead)
    assert ahead.statements < alone.statements
