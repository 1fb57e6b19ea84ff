"""The results of one relay round are written by one UPDATE statement run as one
executemany (outgoing/sender.py), with what one UPDATE per row wrote: sent, deferred and
failed rows side by side, against a real aiosmtpd sink, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from mailgate.outgoing.sender import Sender
from mailgate.pgp.keyring import Keyrings
from mailgate.runtime import utcnow
from tests.harness import outbox
from tests.integration.test_sender import _mail, _queue, _setup
from tests.servers import SmtpSink


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("pg_url") if request.param == "postgres" else ""


def test_a_rounds_results_are_one_executemany_with_each_rows_values(
    tmp_path, smtp_sink: SmtpSink, database_url: str
) -> None:
    cfg, engine, _, _ = _setup(
        tmp_path, smtp_sink, "connections = 1\nbatch_size = 16\n", database_url
    )
    two = lambda n: (f"a{n}@customers.example", f"b{n}@customers.example")  # noqa: E731
    mails = [_mail("answer", n, two(n)) for n in range(6)]
    _queue(engine, mails)
    # one fault per transaction, in sending order: a 452 for one recipient of mail 1,
    # a 550 for both of mail 3; the others name a recipient nobody has (no fault)
    for n in range(6):
        if n == 3:
            smtp_sink.fail("rcpt", 550)  # every recipient of the transaction
        else:
            smtp_sink.fail("rcpt", 452, rcpt=f"{'b' if n == 1 else 'nobody'}{n}@customers.example")
    updates: list[tuple[str, int]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def seen(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("UPDATE outbox SET") and "attempts" in statement:  # no claim
            updates.append((statement, len(parameters) if executemany else 1))

    before = utcnow()
    assert Sender(cfg, engine, keyrings=Keyrings()).send_due() == (4, 1, 1)
    ((statement, n),) = updates  # one statement for the whole round
    assert n == 6 and "rcpt_results" in statement
    rows = sorted(outbox(engine), key=lambda r: r.id)
    assert [r.status for r in rows] == ["sent", "pending", "sent", "failed", "sent", "sent"]
    assert all(r.attempts == 1 and r.claim_token is None for r in rows)
    assert all(r.claimed_until is None for r in rows)
    assert rows[1].rcpt_results["b1@customers.example"].startswith("452")
    assert rows[1].rcpt_results["a1@customers.example"].startswith("250")
    assert rows[1].next_attempt_at > before and rows[1].sent_at is None
    assert rows[1].last_error.startswith("b1@customers.example: 452")
    assert rows[3].sent_at is None and "a3@customers.example: 550" in rows[3].last_error
    for r in (rows[0], rows[2], rows[4], rows[5]):
        assert r.sent_at is not None and r.sent_at >= before and r.last_error == ""
        assert r.next_attempt_at <= before  # left as it was queued
    # the deferred recipient alone goes on the next round, and the row is then sent
    soon = Sender(cfg, engine, clock=lambda: utcnow() + timedelta(seconds=5), keyrings=Keyrings())
    assert soon.send_due() == (1, 0, 0)
    again = sorted(outbox(engine), key=lambda r: r.id)[1]
    assert again.status == "sent" and again.attempts == 2 and again.last_error == ""
    assert [m.rcpt_tos for m in smtp_sink.messages][-1] == ["b1@customers.example"]
