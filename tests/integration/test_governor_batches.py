"""The governor holds the same mails in a batch as mail by mail, on SQLite and PostgreSQL.

A batch (store/send_windows.py) reads each window once and counts each cap only until
one holds (store/send_log.verdict_for); mail by mail every count is one SQL statement.
Crafted sequences and a random one go through `add_outbox` both ways on fresh databases:
the edges of the windows (a row exactly at `since`), a clock that goes back inside a
batch, held mail (which counts against no cap), `mailgate outbox release` and `drop`
between batches, and another daemon's sends on the same database between batches. Both
runs must end with the same rows held and passed for the same reasons, and the crafted
ones with the holds worked out by hand.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from mailgate.config.governor import GovernorSettings
from mailgate.outgoing.compose import Outgoing
from mailgate.outgoing.governor import PASS, Mail
from mailgate.store import fast
from mailgate.store.batch import batch_state, flush
from mailgate.store.outbox import add_outbox, drop_held, outbox, release_held
from mailgate.store.send_log import verdict_for
from tests.harness import with_three_tickets

CAPS = GovernorSettings(
    auto_per_address_hour=3,
    auto_per_address_day=5,
    per_ticket_address_hour=3,
    notify_per_agent_ticket_hour=2,
    ack_per_queue_minute=2,
)
T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AGENT = "agent@example.test"


@dataclass(frozen=True)
class Send:
    """A mail this daemon queues (in the batch of its place in the sequence)."""

    at: float  # seconds after T
    kind: str
    to: str
    ticket: int | None
    queue: str = "support"
    budget: bool = True


@dataclass(frozen=True)
class Other:
    """A mail another daemon on the same database queues and commits, between batches."""

    at: float
    kind: str
    to: str
    ticket: int | None
    queue: str = "support"


@dataclass(frozen=True)
class Release:
    """`mailgate outbox release` of these mails (their numbers in the sequence)."""

    mails: tuple[int, ...]


@dataclass(frozen=True)
class Drop:
    mails: tuple[int, ...]


BATCH = "batch"  # where the batched run commits one batch and opens the next
Step = Send | Other | Release | Drop | str


@pytest.fixture(params=["sqlite", "postgresql"])
def url_of(request: pytest.FixtureRequest, tmp_path) -> Iterator:  # type: ignore[no-untyped-def]
    """A function giving a fresh database's URL per name, on the parameter's engine."""
    if request.param == "sqlite":
        yield lambda name: f"sqlite:///{tmp_path / name}.db"
        return
    postgres = request.getfixturevalue("postgres")
    made: list[str] = []

    def fresh(name: str) -> str:
        made.append(f"t_{name}_{random.getrandbits(48):012x}")
        return postgres.create_database(made[-1])

    yield fresh
    for name in made:
        postgres.drop_database(name)


def _fresh(url: str) -> Engine:
    return with_three_tickets(url, T)


def _outgoing(n: int, step: Send | Other) -> Outgoing:
    return Outgoing(step.kind, "support@example.test", (step.to,), f"<m{n}@x>", b"x", step.ticket)


def _queue(conn, n: int, step: Send | Other) -> None:  # type: ignore[no-untyped-def]
    at = T + timedelta(seconds=step.at)
    budget = step.budget if isinstance(step, Send) else True
    add_outbox(conn, _outgoing(n, step), at, at + timedelta(days=1), CAPS, step.queue, budget)


def _ids(conn, mails: tuple[int, ...]) -> list[int]:  # type: ignore[no-untyped-def]
    wanted = [f"<m{n}@x>" for n in mails]
    return list(conn.execute(select(outbox.c.id).where(outbox.c.message_id.in_(wanted))).scalars())


def _beside(engine: Engine, n: int, step: Step) -> None:
    """What happens outside this daemon's transactions: each its own commit."""
    with engine.begin() as conn:
        if isinstance(step, Other):
            _queue(conn, n, step)
        elif isinstance(step, Release):
            release_held(conn, _ids(conn, step.mails), T, 24)
        elif isinstance(step, Drop):
            drop_held(conn, _ids(conn, step.mails))


def _one_by_one(engine: Engine, steps: list[Step]) -> None:
    for n, step in enumerate(steps):
        if isinstance(step, Send):
            with engine.begin() as conn:
                _queue(conn, n, step)
        elif step != BATCH:
            _beside(engine, n, step)


def _batched(engine: Engine, steps: list[Step]) -> None:
    n, end = 0, len(steps)
    while n < end:
        if not isinstance(steps[n], Send):
            if steps[n] != BATCH:
                _beside(engine, n, steps[n])
            n += 1
            continue
        with engine.begin() as conn, batch_state(conn) as batch:
            while n < end and isinstance(steps[n], Send):
                _queue(conn, n, steps[n])  # type: ignore[arg-type]
                n += 1
            flush(conn, batch)


def _outcome(engine: Engine) -> dict[str, tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.message_id, outbox.c.status, outbox.c.last_error))
        return {m: (s, e) for m, s, e in rows}


def _both_ways(url_of, steps: list[Step], name: str) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    one, batched = _fresh(url_of(f"{name}_one")), _fresh(url_of(f"{name}_batched"))
    try:
        _one_by_one(one, steps)
        _batched(batched, steps)
        expected, got = _outcome(one), _outcome(batched)
    finally:
        one.dispose()
        batched.dispose()
    assert got == expected
    return expected


def _held(outcome: dict[str, tuple[str, str]]) -> dict[int, str]:
    """Mail number -> the cap that holds it."""
    return {
        int(m[2:-3]): e.split(" ")[2].removeprefix("governor.")
        for m, (s, e) in outcome.items()
        if s == "held"
    }


def test_a_row_exactly_at_the_windows_start_no_longer_counts(url_of):
    steps: list[Step] = [
        Send(0, "ack", "a@c.example", 1),
        Send(1, "ack", "b@c.example", 2),
        Send(59.999, "ack", "c@c.example", 3),  # two in the minute: held
        Send(60, "ack", "d@c.example", 3),  # the ack at 0 is at `since`: one in the minute
        BATCH,
        Send(60.5, "ack", "e@c.example", 3),  # those at 1 and 60: held
        Send(61, "ack", "f@c.example", 3),  # the one at 1 is at `since`: passes
        Send(3600, "closed", "a@c.example", 1),  # the ack at 0 is at the hour's `since`
        Send(3600, "closed", "a@c.example", 1),
        Send(3600, "closed", "a@c.example", 1),
        Send(3600, "closed", "a@c.example", 1),  # three in the hour: held
    ]
    held = _held(_both_ways(url_of, steps, "edge"))
    assert held == {
        2: "ack_per_queue_minute",
        5: "ack_per_queue_minute",
        10: "auto_per_address_hour",
    }


def test_a_clock_that_goes_back_inside_a_batch_counts_what_it_had_left(url_of):
    steps: list[Step] = [
        Send(0, "ack", "a@c.example", 1),
        Send(10, "ack", "b@c.example", 2),
        BATCH,
        Send(80, "ack", "c@c.example", 3),  # both acks have left the minute
        Send(80, "notify-new", AGENT, 1),
        Send(80, "notify-new", AGENT, 1),
        Send(30, "ack", "d@c.example", 3),  # back 50 s: the acks at 0, 10 and 80 count
        Send(4000, "notify-new", AGENT, 1),  # an hour on: the two notifications left
        Send(100, "notify-new", AGENT, 1),  # back again: the three count, held
        Send(20, "ack", "e@c.example", 3),  # held (the one at 30 was held: not counted)
    ]
    held = _held(_both_ways(url_of, steps, "back"))
    assert held == {
        6: "ack_per_queue_minute",
        8: "notify_per_agent_ticket_hour",
        9: "ack_per_queue_minute",
    }


def test_held_mail_counts_against_no_cap_until_released_and_dropped_mail_never(url_of):
    steps: list[Step] = [
        *(Send(i, "notify-new", AGENT, 2) for i in range(4)),  # 2 and 3 held
        BATCH,
        Send(10, "notify-new", AGENT, 2),  # held: two counted, the two held not
        Release((2,)),  # counts from now on
        Drop((3,)),  # never counts
        Send(20, "answer", AGENT, 2),  # per ticket: 0, 1 and 2 counted = 3: held
        Send(20, "answer", "b@c.example", 2),
        BATCH,
        Send(30, "ack", "y@c.example", None),
        Send(30, "ack", "z@c.example", None),
        Send(31, "ack", "x@c.example", None, budget=False),  # an authenticated sender: passes
        Send(31, "ack", "v@c.example", None),  # three acks in the minute: held
    ]
    outcome = _both_ways(url_of, steps, "held")
    assert outcome["<m2@x>"][0] == "pending" and outcome["<m3@x>"][0] == "dropped"
    assert _held(outcome) == {
        5: "notify_per_agent_ticket_hour",
        8: "per_ticket_address_hour",
        14: "ack_per_queue_minute",
    }


def test_another_daemons_sends_count_in_the_next_batch(url_of):
    steps: list[Step] = [
        Send(0, "ack", "a@c.example", 1),
        Other(1, "ack", "b@c.example", 2),  # the other daemon's ack counts for the queue
        Send(2, "ack", "c@c.example", 3),  # held
        Other(3, "closed", "c@c.example", 3),
        Other(3, "closed", "c@c.example", 3),
        Other(3, "notify-new", AGENT, 3),
        Other(3, "notify-new", AGENT, 3),
        Send(4, "closed", "c@c.example", 3),  # 2 closed counted (the ack was held): passes
        Send(4, "closed", "c@c.example", 3),  # 3 in the hour: held
        Send(5, "notify-new", AGENT, 3),  # held
        Send(5, "answer", AGENT, 3),  # 2 notifications counted about the ticket: passes
        Send(6, "answer", AGENT, 3),  # held
    ]
    held = _held(_both_ways(url_of, steps, "other"))
    assert held == {
        2: "ack_per_queue_minute",
        8: "auto_per_address_hour",
        9: "notify_per_agent_ticket_hour",
        11: "per_ticket_address_hour",
    }


KINDS = ("ack", "ack", "closed", "answer", "notify-new", "notify-reply", "survey")
ADDRESSES = ("ann@c.example", "bob@c.example", "cy@c.example", AGENT)


def _random_day(seed: int) -> list[Step]:
    """Mail in bursts and lulls, the clock now and then back a little, and between batches
    releases, drops and the other daemon's mail."""
    rnd = random.Random(seed)
    at, steps, sent = 0.0, [], []
    for _ in range(240):
        at = max(0.0, at + rnd.choice((0, 0.5, 1, 20, 59, 60, 61, 900, 3600, -5, -40)))
        args = (at, rnd.choice(KINDS), rnd.choice(ADDRESSES), rnd.choice((1, 2, 3, None)))
        queue = rnd.choice(("support", "billing"))
        roll = rnd.random()
        if roll < 0.08:
            steps += [BATCH, Other(*args, queue=queue)]
        elif roll < 0.12 and len(sent) >= 3:
            steps += [BATCH, rnd.choice((Release, Drop))(tuple(rnd.sample(sent, 3)))]
        else:
            sent.append(len(steps))
            steps.append(Send(*args, queue=queue, budget=rnd.random() < 0.9))
            if rnd.random() < 0.1:
                steps.append(BATCH)
    return steps


@pytest.mark.parametrize("seed", [2, 38])
def test_a_random_day_with_releases_drops_and_another_daemon(url_of, seed):
    outcome = _both_ways(url_of, _random_day(seed), f"day{seed}")
    assert len(set(_held(outcome).values())) >= 4  # these days hold mail by most caps


def test_a_notification_reads_its_tickets_two_windows_with_one_statement(tmp_path):
    """per_ticket_address_hour and notify_per_agent_ticket_hour count the same rows: a
    batch reads them once for a ticket it did not make, and counts both from them."""
    engine = _fresh(f"sqlite:///{tmp_path / 'one_read.db'}")
    steps: list[Step] = [Send(0, "notify-new", AGENT, 1), Send(1, "answer", AGENT, 1)]
    _one_by_one(engine, steps)  # the ticket's past: a notification and an answer
    mail = Mail("notify-new", AGENT, 1, "support")
    with engine.begin() as conn, batch_state(conn) as batch:
        before = fast.StatementCount.n
        verdict = verdict_for(conn, mail, T + timedelta(seconds=2), CAPS)
        assert fast.StatementCount.n - before == 1  # the ticket's rows, once
        assert verdict == PASS  # one notification in the hour, two mails about the ticket
        kept = {key[0]: len(w.times) for key, w in batch.windows.items()}
        assert kept == {"notify_ticket_hour": 1, "ticket_hour": 2}
        before = fast.StatementCount.n
        answer = Mail("answer", AGENT, 1, "support")
        assert verdict_for(conn, answer, T + timedelta(seconds=3), CAPS) == PASS
        assert fast.StatementCount.n == before  # from the window made by the first read
