"""The sender: priority classes, reused relay connections, claims, per-recipient results.

Rows are queued with `store/outbox.add_outbox` (as every writer does) and sent to a real
aiosmtpd sink; a ticket comes from a real message through the offline worker.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy import Engine, select

from mailgate.cli.main import main as cli_main
from mailgate.db.models import Article, OutboxRow
from mailgate.outgoing.claims import claim, share
from mailgate.outgoing.compose import Outgoing
from mailgate.outgoing.sender import Sender
from mailgate.pgp.keyring import Keyrings
from mailgate.runtime import utcnow
from mailgate.spool import Envelope
from mailgate.store.outbox import queue_mails
from tests.harness import load, message, offline, outbox, tickets, write_config
from tests.servers import SmtpSink


def _mail(kind: str, n: int, rcpts: tuple[str, ...], ticket_id: int | None = None) -> Outgoing:
    mid = f"<t.{kind}.{n}@helpdesk.example.test>"
    raw = (
        f"From: support@example.test\r\nTo: {', '.join(rcpts)}\r\nSubject: {kind} {n}\r\n"
        f"Message-ID: {mid}\r\n\r\n{kind} {n}\r\n"
    ).encode()
    return Outgoing(kind, "support@example.test", rcpts, mid, raw, ticket_id)


def _queue(engine: Engine, mails: list[Outgoing], age_seconds: float = 0) -> None:
    with engine.begin() as conn:
        queue_mails(conn, mails, utcnow() - timedelta(seconds=age_seconds), 72)


def _setup(tmp_path, sink: SmtpSink, relay_extra: str = "", database_url: str = ""):  # type: ignore[no-untyped-def]
    cfg = load(
        write_config(
            tmp_path, relay_port=sink.port, relay_extra=relay_extra, database_url=database_url
        )
    )
    engine, spool, worker = offline(cfg)
    return cfg, engine, spool, worker


def _ticket(spool, worker, sender: str = "carla@customers.example") -> None:  # type: ignore[no-untyped-def]
    spool.put(message(sender=sender), Envelope(source="pipe", queue="support"))
    worker.drain()


def test_acknowledgements_go_before_an_older_flood_of_notifications(tmp_path, smtp_sink):
    cfg, engine, _, _ = _setup(tmp_path, smtp_sink, "connections = 1\nbatch_size = 16\n")
    _queue(engine, [_mail("notify-new", i, ("alice@example.test",)) for i in range(100)], 60)
    _queue(engine, [_mail("reminder", i, ("alice@example.test",)) for i in range(5)], 60)
    _queue(engine, [_mail("ack", i, (f"c{i}@customers.example",)) for i in range(10)])
    assert Sender(cfg, engine, keyrings=Keyrings()).send_due() == (115, 0, 0)
    kinds = [c.message["Subject"].split()[0] for c in smtp_sink.messages]
    print(f"\nrelay order: first 20 {kinds[:20]}")
    assert kinds[:10] == ["ack"] * 10
    # the reminders (oldest class) are not starved behind the hundred notifications
    assert "reminder" in kinds[:32]
    assert Counter(kinds) == {"notify-new": 100, "reminder": 5, "ack": 10}


def test_share_reserves_room_for_every_class():
    flood = {0: list(range(100)), 1: list(range(100, 200)), 2: [300]}
    got = share(flood, 16)
    assert len(got) == 16 and 300 in got and {100, 101} <= set(got)
    assert share({0: [1, 2], 1: [], 2: []}, 16) == [1, 2]
    assert share({1: [5, 6, 7]}, 2) == [5, 6]


def test_a_few_connections_carry_many_messages(tmp_path, smtp_sink):
    cfg, engine, _, _ = _setup(tmp_path, smtp_sink, "connections = 4\n")
    _queue(engine, [_mail("ack", i, (f"c{i}@customers.example",)) for i in range(200)])
    sender = Sender(cfg, engine, keyrings=Keyrings())
    assert sender.send_due(keep_open=True) == (200, 0, 0)
    _queue(engine, [_mail("answer", i, (f"c{i}@customers.example",)) for i in range(50)])
    assert sender.send_due() == (50, 0, 0)  # the same connections, still open
    print(f"\n250 messages over {smtp_sink.connections} relay connections")
    assert 1 <= smtp_sink.connections <= 4
    assert len({str(c.message["Message-ID"]) for c in smtp_sink.messages}) == 250


def test_a_claimed_row_is_left_alone_until_its_lease_runs_out(tmp_path, smtp_sink):
    cfg, engine, _, _ = _setup(tmp_path, smtp_sink, "lease_seconds = 60\n")
    _queue(engine, [_mail("ack", 0, ("c@customers.example",))])
    # a sender that claimed the row and died before recording anything
    assert len(claim(engine, utcnow(), 10, 60)) == 1
    assert Sender(cfg, engine, keyrings=Keyrings()).send_due() == (0, 0, 0)
    later = Sender(cfg, engine, clock=lambda: utcnow() + timedelta(seconds=61), keyrings=Keyrings())
    assert later.send_due() == (1, 0, 0)
    [got] = smtp_sink.messages
    assert str(got.message["Message-ID"]) == "<t.ack.0@helpdesk.example.test>"


def test_452_for_one_of_two_recipients_retries_only_that_one(tmp_path, smtp_sink, capsys):
    cfg, engine, spool, worker = _setup(tmp_path, smtp_sink)
    _ticket(spool, worker)
    [t] = tickets(engine)
    Sender(cfg, engine, keyrings=Keyrings()).send_due()  # the acknowledgement
    smtp_sink.clear()
    _queue(engine, [_mail("answer", 1, ("a@customers.example", "b@customers.example"), t.id)])
    smtp_sink.fail("rcpt", 452, rcpt="b@customers.example")
    assert Sender(cfg, engine, keyrings=Keyrings()).send_due() == (0, 1, 0)
    [row] = [r for r in outbox(engine) if r.kind == "answer"]
    assert row.status == "pending" and row.rcpt_results["b@customers.example"].startswith("452")
    assert row.rcpt_results["a@customers.example"].startswith("250")
    soon = Sender(cfg, engine, clock=lambda: utcnow() + timedelta(seconds=5), keyrings=Keyrings())
    assert soon.send_due() == (1, 0, 0)
    got = [(c.rcpt_tos, str(c.message["Message-ID"])) for c in smtp_sink.messages]
    print(f"\n452 for one of two: relay got {got}")
    assert got == [
        (["a@customers.example"], "<t.answer.1@helpdesk.example.test>"),
        (["b@customers.example"], "<t.answer.1@helpdesk.example.test>"),
    ]
    [row] = [r for r in outbox(engine) if r.kind == "answer"]
    assert row.status == "sent" and row.attempts == 2 and row.last_error == ""
    assert cli_main(["--config", str(cfg.path), "tickets", "show", str(t.id)]) == 0
    shown = capsys.readouterr().out
    assert "b@customers.example: 250" in shown and "a@customers.example: 250" in shown


def test_550_for_one_recipient_delivers_the_other_and_notes_the_failure(
    tmp_path, smtp_sink, capsys
):
    cfg, engine, spool, worker = _setup(tmp_path, smtp_sink)
    _ticket(spool, worker)
    [t] = tickets(engine)
    Sender(cfg, engine, keyrings=Keyrings()).send_due()
    smtp_sink.clear()
    _queue(engine, [_mail("answer", 1, ("a@customers.example", "gone@customers.example"), t.id)])
    smtp_sink.fail("rcpt", 550, rcpt="gone@customers.example")
    assert Sender(cfg, engine, keyrings=Keyrings()).send_due() == (1, 0, 0)
    [got] = smtp_sink.messages
    assert got.rcpt_tos == ["a@customers.example"]
    [row] = [r for r in outbox(engine) if r.kind == "answer"]
    assert row.status == "sent" and "gone@customers.example: 550" in row.last_error
    with engine.connect() as conn:
        notes = conn.scalars(
            select(Article.body_text).where(Article.ticket_id == t.id, Article.kind == "system")
        ).all()
    assert len(notes) == 1
    assert "gone@customers.example" in notes[0] and "550" in notes[0]
    assert "delivered to a@customers.example" in notes[0]
    later = Sender(cfg, engine, clock=lambda: utcnow() + timedelta(days=30), keyrings=Keyrings())
    assert later.send_due() == (0, 0, 0)  # neither recipient is tried again
    assert cli_main(["--config", str(cfg.path), "tickets", "show", str(t.id)]) == 0
    assert "gone@customers.example: 550" in capsys.readouterr().out


def test_two_senders_on_one_postgresql_never_send_a_row_twice(tmp_path, smtp_sink, pg_url):
    cfg, engine, _, _ = _setup(tmp_path, smtp_sink, "connections = 2\nbatch_size = 8\n", pg_url)
    n = 400
    _queue(engine, [_mail("ack", i, (f"c{i}@customers.example",)) for i in range(n)])
    results: list[tuple[int, int, int]] = []
    start = threading.Barrier(2)

    def one_sender() -> None:
        sender = Sender(cfg, engine, keyrings=Keyrings())
        start.wait()
        results.append(sender.send_due())

    threads = [threading.Thread(target=one_sender) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    got = Counter(str(c.message["Message-ID"]) for c in smtp_sink.messages)
    print(f"\ntwo senders: {results} relay got {sum(got.values())} distinct {len(got)}")
    assert sorted(r[0] for r in results) != [0, n], "one sender did everything: no contention"
    assert sum(r[0] for r in results) == n
    assert len(got) == n and max(got.values()) == 1
    with engine.connect() as conn:
        assert set(conn.scalars(select(OutboxRow.status))) == {"sent"}


def test_a_sender_stuck_on_a_database_error_logs_its_traceback_once(tmp_path, smtp_sink, caplog):
    """The outbox table gone under a running sender: every sweep fails the same way; the
    traceback is logged once (not every second), health says failing, and the sender
    keeps retrying (with backoff) rather than stopping."""
    import asyncio
    import logging

    from sqlalchemy import text

    from mailgate.health import Health

    cfg, engine, _, _ = _setup(tmp_path, smtp_sink)
    sender = Sender(cfg, engine, keyrings=Keyrings())
    sender.health = Health()
    sweeps = Counter()
    real = sender.send_due

    def counted(**kw):  # type: ignore[no-untyped-def]
        sweeps["runs"] += 1
        return real(**kw)

    sender.send_due = counted  # type: ignore[method-assign]

    async def scenario() -> None:
        stop, wake = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(sender.run(stop, wake, idle_poll=0.05))
        await asyncio.sleep(0.3)  # started: its claims were taken back, it sweeps
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE outbox RENAME TO outbox_away"))
        sweeps["before"] = sweeps["runs"]
        await asyncio.sleep(4.0)  # backoff 1 s, 2 s ...: a few failed sweeps
        stop.set()
        await task

    with caplog.at_level(logging.INFO, logger="mailgate.outgoing.sender"):
        asyncio.run(scenario())
    failures = [r for r in caplog.records if "sweep failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None
    assert sweeps["runs"] - sweeps["before"] >= 2  # it kept trying
    (state,) = [s for s in sender.health.snapshot() if s.name == "sender"]
    assert not state.ok and "outbox" in state.detail
    engine.dispose()
