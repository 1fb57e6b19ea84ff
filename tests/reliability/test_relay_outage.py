"""The outbound relay breaks: acks wait in the outbox, then go out exactly once.

A running daemon (real sockets both ways) relays to a fault-injecting aiosmtpd sink. The
relay is taken down (421 to every connection, or the port closed), new tickets come in,
their acknowledgements are retried with backoff (the harness config: 0.2 s initial, 1 s
cap) and must all arrive, each once, after the relay comes back. A 5xx at RCPT fails a row
for good with a note on its ticket; a single 452 is retried and delivered once.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from mailgate.config.model import Config
from mailgate.db.models import OutboxRow, Ticket
from mailgate.outgoing.sender import Sender
from mailgate.pgp.keyring import Keyrings
from mailgate.runtime import utcnow
from tests.harness import load, message, outbox, running, tickets, wait_until, write_config
from tests.servers import SmtpSink

N = 30


def _count(engine: Engine, *where) -> int:  # type: ignore[no-untyped-def]
    """Cheap polling (the harness helpers load whole rows, raw mail included)."""
    table = OutboxRow if where else Ticket
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def _acks(engine: Engine) -> list[OutboxRow]:
    """The acknowledgement rows (agent notifications, when configured, are other rows)."""
    return [r for r in outbox(engine) if r.kind == "ack"]


def assert_nothing_left_to_send(config: Config, engine: Engine) -> None:
    """A sender whose clock runs a month ahead finds no row due: none can go out again."""
    month_later = Sender(
        config, engine, clock=lambda: utcnow() + timedelta(days=30), keyrings=Keyrings()
    )
    assert month_later.send_due() == (0, 0, 0)


def _sink_ids(sink: SmtpSink) -> Counter[str]:
    return Counter(str(c.message["Message-ID"]) for c in sink.messages)


@pytest.mark.parametrize("refuse", [False, True], ids=["421-greeting", "port-closed"])
def test_relay_outage_then_everything_delivered_once(tmp_path, smtp_sink: SmtpSink, refuse):
    cfg = load(write_config(tmp_path, relay_port=smtp_sink.port))
    smtp_sink.set_down(True, refuse=refuse)
    t0 = time.monotonic()
    with running(cfg) as d:
        for i in range(N):
            sender = f"outage{i:02d}@customers.example"
            d.send(message(sender=sender, subject=f"relay outage {i}"), sender=sender)
        wait_until(lambda: _count(d.engine) == N, timeout=30, interval=0.1)

        def all_tried_twice() -> bool:
            tried = _count(
                d.engine,
                OutboxRow.kind == "ack",
                OutboxRow.attempts >= 2,
                OutboxRow.last_error != "",
            )
            return tried == N

        wait_until(all_tried_twice, timeout=30, interval=0.2)
        during = _acks(d.engine)
        pending_all = {r.status for r in outbox(d.engine)}
        refused_connections = smtp_sink.connections
        assert not smtp_sink.messages
        down_for = time.monotonic() - t0

        smtp_sink.set_down(False)
        t_up = time.monotonic()
        wait_until(lambda: _count(d.engine, OutboxRow.status != "sent") == 0, timeout=30)
        recovery = time.monotonic() - t_up
        assert_nothing_left_to_send(cfg, d.engine)  # no stray resend, now or later
        after = _acks(d.engine)
        everything = outbox(d.engine)
        ts = tickets(d.engine)

    got = _sink_ids(smtp_sink)
    expected = {r.message_id for r in everything}
    missing = expected - got.keys()
    dups = {m: n for m, n in got.items() if n > 1}
    summary = (
        f"mode={'port closed' if refuse else '421'} tickets={len(ts)} ack_rows={len(after)} "
        f"outbox_rows={len(everything)} "
        f"attempts_while_down={sum(r.attempts for r in during)} "
        f"relay_connections_while_down={refused_connections} down_for={down_for:.1f}s "
        f"delivered={sum(got.values())} distinct={len(got)} missing={len(missing)} "
        f"duplicates={sum(n - 1 for n in dups.values())} recovery={recovery:.1f}s"
    )
    print("\nrelay outage:", summary)
    assert len(ts) == N, summary
    assert len(during) == N and pending_all == {"pending"}, summary
    assert all(r.attempts >= 2 and r.last_error for r in during), summary
    assert {len(r.rcpt_tos) for r in during} == {1}, summary
    assert not missing, f"never delivered: {sorted(missing)[:5]}\n{summary}"
    assert not dups, f"delivered twice: {dups}\n{summary}"
    assert got.keys() == expected, summary
    assert {r.status for r in everything} == {"sent"} and len(after) == N, summary
    # each ack went to its own ticket's requester
    by_mid = {str(c.message["Message-ID"]): c.rcpt_tos for c in smtp_sink.messages}
    requester = {t.id: t.requester_addr for t in ts}
    assert all(by_mid[r.message_id] == [requester[r.ticket_id]] for r in after), summary


def test_permanent_rcpt_failure_fails_the_row_and_notes_the_ticket(tmp_path, smtp_sink):
    # no agents: no notification can take the one injected fault meant for the ack
    cfg = load(write_config(tmp_path, relay_port=smtp_sink.port, agents_toml=""))
    smtp_sink.fail("rcpt", 550)
    with running(cfg) as d:
        d.send(message(sender="gone@customers.example"), sender="gone@customers.example")
        wait_until(lambda: [r.status for r in outbox(d.engine)] == ["failed"], timeout=20)
        # the relay keeps working for the next message
        d.send(message(sender="fine@customers.example"), sender="fine@customers.example")
        wait_until(lambda: [r.status for r in outbox(d.engine)] == ["failed", "sent"], timeout=20)
        assert_nothing_left_to_send(cfg, d.engine)  # the failed row is never tried again
        rows = outbox(d.engine)
        ts = tickets(d.engine)
    failed, sent = rows
    got = _sink_ids(smtp_sink)
    notes = [a for a in ts[0].articles if a.kind == "system"]
    print(
        f"\n5xx at RCPT: failed row attempts={failed.attempts} error={failed.last_error!r} "
        f"system notes={len(notes)} relay got={dict(got)} fired={smtp_sink.fired}"
    )
    assert smtp_sink.fired == [("rcpt", 550)]
    assert failed.attempts == 1 and "550" in failed.last_error
    assert failed.ticket_id == ts[0].id and ts[0].requester_addr == "gone@customers.example"
    assert len(notes) == 1, [a.body_text for a in ts[0].articles]
    assert failed.message_id in notes[0].body_text and "failed" in notes[0].body_text
    assert "550" in notes[0].body_text
    assert failed.message_id not in got
    assert got == {sent.message_id: 1}
    assert not [a for a in ts[1].articles if a.kind == "system"]


def test_temporary_rcpt_failure_is_retried_and_delivered_once(tmp_path, smtp_sink):
    cfg = load(write_config(tmp_path, relay_port=smtp_sink.port, agents_toml=""))
    smtp_sink.fail("rcpt", 452)
    with running(cfg) as d:
        d.send(message(sender="busy@customers.example"), sender="busy@customers.example")
        wait_until(lambda: [r.status for r in outbox(d.engine)] == ["sent"], timeout=20)
        assert_nothing_left_to_send(cfg, d.engine)  # no stray resend, now or later
        rows = outbox(d.engine)
        ts = tickets(d.engine)
    got = _sink_ids(smtp_sink)
    print(f"\n452 once: attempts={rows[0].attempts} relay got={dict(got)} fired={smtp_sink.fired}")
    assert smtp_sink.fired == [("rcpt", 452)]
    assert rows[0].attempts == 2
    assert got == {rows[0].message_id: 1}
    assert not [a for a in ts[0].articles if a.kind == "system"]
