"""The per-agent digest, through the running daemon (real sockets, real sink, real clock).

Eight customer mails on one ticket make eight notifications for alice: the cap
(`notify_per_agent_ticket_hour`, 5) lets five reach the relay, the other three are held
and, once the oldest has waited `digest_after_minutes`, go out as exactly one digest
listing them and the ticket's new system notes; the held rows are marked `digested`. A
naive responder's answer to the digest is an inert note: no answer to the customer, no
command, no further mail.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from email.utils import getaddresses

from sqlalchemy import select

from mailgate.db import engine as db
from mailgate.db.models import Article, OutboxRow
from mailgate.runtime import utcnow
from mailgate.scheduler.runner import run_all_sweeps
from mailgate.store.articles import system_article
from tests.harness import load, message, running, wait_until, write_config
from tests.responders import Clock, vacation_reply

NOTIFY = {q: "[agent_mail]\nnotify = true\n" for q in ("support", "billing", "sales")}
CUSTOMER = "carla@customers.example"
AGENT = "alice@example.test"
WORDS = ("", "the total", "the address", "the tax", "the date", "the name", "the plan", "the fee")
NOTE = "Delivery of <x@example> to carla@customers.example failed: 550 no such user"


def _config(tmp_path, sink, governor: str):  # type: ignore[no-untyped-def]
    path = write_config(tmp_path, relay_port=sink.port, queue_extra=NOTIFY)
    path.write_text(path.read_text() + f"\n[governor]\n{governor}\n")
    return load(path)


def _kind(c) -> str:  # type: ignore[no-untyped-def]
    return str(c.message["Message-ID"]).split(".")[1]


def _to(sink, rcpt: str, kind: str) -> list:  # type: ignore[no-untyped-def]
    return [c for c in sink.messages if rcpt in c.rcpt_tos and _kind(c) == kind]


def _rows(engine, **where):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        q = select(OutboxRow.id, OutboxRow.kind, OutboxRow.status, OutboxRow.rcpt_tos)
        for k, v in where.items():
            q = q.where(getattr(OutboxRow, k) == v)
        return conn.execute(q).all()


def _customer_mails(d, sink, n: int) -> None:  # type: ignore[no-untyped-def]
    d.send(message(sender=CUSTOMER, subject="My invoice is wrong"), sender=CUSTOMER)
    ack = wait_until(lambda: _to(sink, CUSTOMER, "ack"), 30, "the acknowledgement")[0]
    for i in range(1, n):
        raw = message(
            sender=CUSTOMER,
            subject="Re: My invoice is wrong",
            body=f"About the invoice: {WORDS[i]} is still wrong, please look again.\n",
            in_reply_to=str(ack.message["Message-ID"]),
            references=str(ack.message["Message-ID"]),
        )
        d.send(raw, sender=CUSTOMER)


def test_notifications_over_the_cap_go_out_as_one_digest(tmp_path, smtp_sink):
    cfg = _config(tmp_path, smtp_sink, "digest_after_minutes = 0.1")
    with running(cfg, sweep_seconds=0.5) as d:
        _customer_mails(d, smtp_sink, 8)

        def notified():  # type: ignore[no-untyped-def]
            return [c for c in smtp_sink.messages if AGENT in c.rcpt_tos and "notify" in _kind(c)]

        wait_until(lambda: len(notified()) == 5, 60, "5 notifications")
        with d.engine.begin() as conn:  # a system note (as a bounce would add) before the digest
            system_article(conn, 1, NOTE, utcnow())
        digest = wait_until(lambda: _to(smtp_sink, AGENT, "digest"), 60, "the digest")[0]
        assert len(notified()) == 5  # the cap's mails
        body = digest.message.get_body(("plain",)).get_content()
        assert body.count("Customer reply: [") == 3, body  # the three held, listed
        assert NOTE in body
        assert "#1" in str(digest.message["Subject"])
        digested = _rows(d.engine, status="digested")
        assert len(digested) == 3 and all(r.kind == "notify-customer_reply" for r in digested)

        # a naive responder answers the digest: kept as a note, nothing goes anywhere
        before = len(smtp_sink.messages)
        raw = vacation_reply(digest, AGENT, Clock(utcnow()), "Re: {subject}", vary=True)
        to = getaddresses([str(digest.message["Reply-To"])])[0][1]
        assert "+t1." in to  # the ticket's token: the responder authenticates
        d.send(raw, rcpts=[to], sender=AGENT)

        def noted():  # type: ignore[no-untyped-def]
            with d.engine.connect() as conn:
                return conn.scalars(
                    select(Article.id).where(Article.kind == "note", Article.ticket_id == 1)
                ).all()

        wait_until(noted, 30, "the inert note")
        wait_until(lambda: not _rows(d.engine, status="pending"), 30, "an empty outbox")
        assert not _rows(d.engine, kind="answer")
        assert len(smtp_sink.messages) == before
        assert len(_to(smtp_sink, AGENT, "digest")) == 1  # the sweeps ran on: still one


def test_without_the_digest_the_held_notifications_stay_held(tmp_path, smtp_sink):
    cfg = _config(tmp_path, smtp_sink, "digest = false")
    with running(cfg) as d:
        _customer_mails(d, smtp_sink, 7)
        wait_until(lambda: len(_rows(d.engine, status="held")) == 2, 60, "2 held notifications")
    engine = db.connect(cfg.database_url)
    later = utcnow() + timedelta(hours=2)
    run_all_sweeps(engine, cfg, later)
    assert len(_rows(engine, status="held")) == 2 and not _rows(engine, kind="digest")
    on = replace(cfg, governor=cfg.governor.model_copy(update={"digest": True}))
    run_all_sweeps(engine, on, later)
    run_all_sweeps(engine, on, later)  # a second run (or daemon) queues nothing twice
    assert len(_rows(engine, kind="digest")) == 1
    assert len(_rows(engine, status="digested")) == 2
    engine.dispose()
