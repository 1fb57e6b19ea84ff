"""Loop breakers without the governor: alike replies, vacation replies, our own mail back.

The offline worker and sender on a fake clock against a real aiosmtpd sink; the
governor is switched off in each test so what stops the loop is the breaker under test.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from mailgate.agents import tokens
from mailgate.db import engine as db
from mailgate.db.models import Article, OutboxRow, Ticket
from mailgate.pgp.keyring import Keyrings
from mailgate.pipeline.steps import Pipeline
from mailgate.pipeline.worker import Worker
from mailgate.spool import Envelope, Spool
from tests.harness import load, message, write_config
from tests.responders import exchange

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOTIFY = {q: "[agent_mail]\nnotify = true\n" for q in ("support", "billing", "sales")}
CUSTOMER = "carla@customers.example"
AGENT = "alice@example.test"


def _config(tmp_path, sink):  # type: ignore[no-untyped-def]
    path = write_config(tmp_path, relay_port=sink.port, queue_extra=NOTIFY)
    path.write_text(path.read_text() + "\n[governor]\nenabled = false\n")
    return load(path)


def _offline(cfg):  # type: ignore[no-untyped-def]
    engine = db.connect(cfg.database_url)
    spool = Spool(cfg.spool_dir)
    return (
        engine,
        spool,
        Worker(cfg, engine, spool, Pipeline(cfg, lambda: START, keyrings=Keyrings())),
    )


def _with_first_ticket(tmp_path, sink, mid: str):  # type: ignore[no-untyped-def]
    """Config, engine, spool and worker, with the customer's first mail made a ticket."""
    cfg = _config(tmp_path, sink)
    engine, spool, worker = _offline(cfg)
    first = message(sender=CUSTOMER, subject="Printer", date=START, message_id=mid)
    spool.put(first, Envelope(source="smtp", rcpt_tos=("support@example.test",)))
    worker.drain()
    return cfg, engine, spool, worker


def test_alike_vacation_replies_on_both_sides_stop_by_themselves(tmp_path, smtp_sink):
    cfg = _config(tmp_path, smtp_sink)
    first = message(sender=CUSTOMER, subject="My invoice is wrong", date=START)
    got = exchange(cfg, smtp_sink, first, {CUSTOMER, AGENT}, hours=6, start=START)
    print(f"\nalike responders, no governor, 6 h: {dict(got)}")
    answers = got[(CUSTOMER, "answer")]
    notifications = sum(n for (rcpt, k), n in got.items() if rcpt == AGENT)
    assert answers == 1  # the agent's responder's second, identical answer is not sent
    assert notifications <= 3  # the customer's third alike mail is a loop: nobody notified
    engine = db.connect(cfg.database_url)
    with engine.connect() as conn:
        repeated = conn.scalars(
            select(Article.id).where(Article.kind == "note", Article.author == "alice")
        ).all()
    assert repeated, "the repeated answer is kept as a note"


def test_a_run_of_alike_customer_mails_is_a_loop_after_three(tmp_path, smtp_sink):
    cfg, engine, spool, worker = _with_first_ticket(tmp_path, smtp_sink, "<c0@customers.example>")
    for i in range(1, 7):
        # the same text, quoting another line and naming another number each time
        body = f"Thank you for your mail {i}00.\nWe will be back soon.\n> quoted {i}\n"
        raw = message(
            sender=CUSTOMER,
            subject="Re: [support #1] Printer",
            in_reply_to="<c0@customers.example>",
            body=body,
            date=START,
        )
        spool.put(raw, Envelope(source="smtp", rcpt_tos=("support@example.test",)))
        worker.drain()
    with engine.connect() as conn:
        notified = conn.scalars(
            select(OutboxRow.id).where(OutboxRow.kind == "notify-customer_reply")
        ).all()
        notes = conn.scalars(select(Article.body_text).where(Article.kind == "system")).all()
        inbound = conn.scalars(select(Article.id).where(Article.kind == "inbound")).all()
    assert len(inbound) == 7  # every mail is kept
    assert len(notified) == 2  # the first two alike mails notify; from the third on, nobody
    assert len(notes) == 1 and "Mail loop: 3 near-identical messages" in notes[0]


def test_an_agents_vacation_reply_by_subject_is_an_inert_note(tmp_path, smtp_sink):
    cfg = _config(tmp_path, smtp_sink)
    engine, spool, worker = _offline(cfg)
    spool.put(
        message(sender=CUSTOMER, date=START),
        Envelope(source="smtp", rcpt_tos=("support@example.test",)),
    )
    worker.drain()
    with engine.connect() as conn:
        tid = conn.scalars(select(Ticket.id)).one()
    for subject in (
        "Automatic reply: [support #1]",
        "Abwesenheitsnotiz: Drucker",
        "Réponse automatique",
    ):
        addr = tokens.reply_address(cfg.secret, "alice", tid, "support@example.test")
        raw = message(
            sender=AGENT, to=addr, subject=subject, body="#close\nI am away.\n", date=START
        )
        spool.put(raw, Envelope(source="smtp", rcpt_tos=(addr,)))
    worker.drain()
    with engine.connect() as conn:
        status = conn.scalars(select(Ticket.status)).one()
        kinds = conn.scalars(select(OutboxRow.kind)).all()
        notes = conn.scalars(select(Article.verdict).where(Article.kind == "note")).all()
    assert status == "new"
    assert "answer" not in kinds
    assert len(notes) == 3 and all(n.get("agent_mail") == "automatic" for n in notes)


def test_automatic_customer_mail_notifies_nobody_and_reopens_nothing(tmp_path, smtp_sink):
    cfg, engine, spool, worker = _with_first_ticket(tmp_path, smtp_sink, "<c1@customers.example>")
    with engine.begin() as conn:
        conn.execute(Ticket.__table__.update().values(status="closed"))
        before = len(conn.scalars(select(OutboxRow.id)).all())
    ooo = message(
        sender=CUSTOMER,
        subject="Out of Office: [support #1] Printer",
        in_reply_to="<c1@customers.example>",
        date=START,
    )
    spool.put(ooo, Envelope(source="smtp", rcpt_tos=("support@example.test",)))
    worker.drain()
    with engine.connect() as conn:
        assert conn.scalars(select(Ticket.status)).one() == "closed"
        assert len(conn.scalars(select(OutboxRow.id)).all()) == before
        assert conn.scalars(select(Article.auto).where(Article.kind == "inbound")).all()[-1]


def test_our_own_mail_coming_back_is_dropped_as_a_loop_with_the_reason(tmp_path, smtp_sink):
    cfg = _config(tmp_path, smtp_sink)
    engine, spool, worker = _offline(cfg)
    back = message(sender=CUSTOMER, extra="X-Mailgate-Loop: helpdesk.example.test", date=START)
    spool.put(back, Envelope(source="smtp", rcpt_tos=("support@example.test",)))
    worker.drain()
    with engine.connect() as conn:
        assert conn.scalars(select(Ticket.id)).all() == []
        assert conn.scalars(select(OutboxRow.id)).all() == []
    [entry] = spool.shunted()
    failure = entry.envelope.failures[-1]
    assert failure["stage"] == "classify" and "loop" in failure["reason"]
    assert "X-Mailgate-Loop" in failure["reason"]
