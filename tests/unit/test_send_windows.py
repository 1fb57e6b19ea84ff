"""The governor decides the same in a batch (windows read once) as mail by mail (SQL counts).

A random day of outgoing mail (acknowledgements, closing notices, answers, notifications,
to a few addresses about a few tickets in two queues, at irregular times) goes through
`add_outbox` twice on fresh databases: once each mail in its own transaction (every count
one SQL statement), once in optimistic batches (store/send_windows.py; the send_log lines
deferred to the flush). The caps are small so that every one of them holds mail; the two
runs must hold and pass exactly the same mails for the same reasons.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mailgate.config.governor import GovernorSettings
from mailgate.outgoing.compose import Outgoing
from mailgate.outgoing.governor import Mail
from mailgate.store.batch import batch_state, flush
from mailgate.store.outbox import add_outbox, outbox
from mailgate.store.send_log import counts_for
from tests.harness import with_three_tickets

CAPS = GovernorSettings(
    auto_per_address_hour=4,
    auto_per_address_day=8,
    per_ticket_address_hour=3,
    notify_per_agent_ticket_hour=1,
    ack_per_queue_minute=3,
)
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KINDS = ("ack", "ack", "closed", "answer", "notify-new", "notify-reply", "survey")
ADDRESSES = (
    "ann@c.example",
    "Bob@C.example",
    "cy@c.example",
    "dee@c.example",
    "eve@c.example",
    "agent@example.test",
)


# a burst (seconds apart), a busy day (minutes apart), then quiet days (hours apart):
# every window fills and empties
PHASES = ((80, (1, 2, 3)), (200, (60, 300, 900)), (120, (3600, 7200, 14400)))


def _day(seed: int) -> list[tuple[datetime, Outgoing, str]]:
    rnd = random.Random(seed)
    now, mails = START, []
    gaps = [g for n, choices in PHASES for g in [choices] * n]
    for i, choices in enumerate(gaps):
        now += timedelta(seconds=rnd.choice(choices))
        rcpts = tuple(rnd.sample(ADDRESSES, rnd.choice((1, 1, 2))))
        out = Outgoing(
            kind=rnd.choice(KINDS),
            mail_from="support@example.test",
            rcpt_tos=rcpts,
            message_id=f"<m{i}@example.test>",
            raw=b"x",
            ticket_id=rnd.choice((1, 2, 3, None)),
        )
        mails.append((now, out, rnd.choice(("support", "billing"))))
    return mails


def _fresh(tmp_path, name: str):  # type: ignore[no-untyped-def]
    return with_three_tickets(f"sqlite:///{tmp_path / name}", START)


def _outcome(engine) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.message_id, outbox.c.status, outbox.c.last_error).order_by(outbox.c.id)
        )
        return [tuple(r) for r in rows]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("batch_size", [7, 64])
def test_batches_hold_exactly_what_mail_by_mail_holds(tmp_path, seed, batch_size):
    day = _day(seed)
    one_by_one = _fresh(tmp_path, "one.db")
    for now, out, queue in day:
        with one_by_one.begin() as conn:
            add_outbox(conn, out, now, now + timedelta(days=1), CAPS, queue)

    batched = _fresh(tmp_path, "batched.db")
    for i in range(0, len(day), batch_size):
        with batched.begin() as conn, batch_state(conn) as batch:
            for now, out, queue in day[i : i + batch_size]:
                add_outbox(conn, out, now, now + timedelta(days=1), CAPS, queue)
            flush(conn, batch)

    expected, got = _outcome(one_by_one), _outcome(batched)
    assert got == expected
    # the caps did their work: every one of them held mail in this day
    held_by = Counter(e.split(" ")[2] for _, status, e in expected if status == "held")
    assert set(held_by) == {
        "governor.ack_per_queue_minute",
        "governor.auto_per_address_hour",
        "governor.auto_per_address_day",
        "governor.per_ticket_address_hour",
        "governor.notify_per_agent_ticket_hour",
    }, held_by


def test_a_queue_window_counts_every_ack_across_a_long_batch(tmp_path):
    """A queue's acknowledgements of the last minute counted in one batch whose clock runs
    on past the times it read (send_windows.NEAR): every count is the number of counted
    acks in the minute, whatever part of the window the held ones (which do not count)
    and the batch's own acks (in no database count before the flush) fall in."""
    engine = _fresh(tmp_path, "acks.db")
    rnd = random.Random(7)
    counted = []  # the times of the acks that count
    with engine.begin() as conn:  # 240 acks over two minutes, 0.5 s apart; a third held
        held = []
        for i in range(240):
            at = START + timedelta(seconds=i / 2)
            out = Outgoing("ack", "s@example.test", (f"c{i}@c.example",), f"<a{i}@x>", b"x", 1)
            add_outbox(conn, out, at, at, None, "support")
            (held if rnd.random() < 1 / 3 else counted).append((i + 1, at))
        ids = [i for i, _ in held]
        conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(status="held"))
    counted = [at for _, at in counted]
    caps = GovernorSettings(auto_per_address_hour=0, auto_per_address_day=0)
    with engine.begin() as conn, batch_state(conn):
        for k in range(180):  # 0.7 s apart: 126 s, the window read again after each NEAR
            now = START + timedelta(seconds=30 + k * 0.7)
            if k % 20 == 19:
                out = Outgoing("ack", "s@example.test", (f"b{k}@c.example",), f"<b{k}@x>", b"x", 2)
                add_outbox(conn, out, now, now, None, "support")
                counted.append(now)
            mail = Mail("ack", f"n{k}@c.example", None, "support")
            expected = sum(1 for at in counted if at > now - timedelta(minutes=1))
            assert counts_for(conn, mail, now, caps).acks_queue_minute == expected, k
