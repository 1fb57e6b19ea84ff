"""The mail path over real sockets: smtplib -> listener -> spool -> worker -> DB -> sink."""

from __future__ import annotations

import smtplib
from email.utils import make_msgid

import pytest

from mailgate.bounces.verp import verp_row
from mailgate.store.junk import list_junk
from tests.harness import (
    article_count,
    load,
    message,
    outbox,
    running,
    tickets,
    wait_until,
    write_config,
)
from tests.servers import SmtpSink

AGENTS = {"alice@example.test"}


def to_customers(sink: SmtpSink) -> list:
    """What the relay got for customers (agents also get notifications)."""
    return [m for m in sink.messages if not set(m.rcpt_tos) & AGENTS]


def junk_rows(engine) -> list:
    with engine.connect() as conn:
        return list_junk(conn)


def acks(engine) -> list:
    return [r for r in outbox(engine) if r.kind == "ack"]


@pytest.fixture
def cfg(tmp_path, smtp_sink: SmtpSink):
    return load(write_config(tmp_path, relay_port=smtp_sink.port))


def test_new_ticket_and_ack_reach_the_relay(cfg, smtp_sink: SmtpSink):
    with running(cfg) as d:
        d.send(message(subject="Grüße: Drucker kaputt", body="Hallo,\nder Drucker ist kaputt.\n"))
        got = wait_until(lambda: to_customers(smtp_sink))
        ts = tickets(d.engine)
    assert len(ts) == 1
    t = ts[0]
    assert t.title == "Grüße: Drucker kaputt"
    assert t.queue == "support" and t.status == "new" and t.priority == 50
    assert "der Drucker ist kaputt" in t.articles[0].body_text
    ack = [m for m in got if m.rcpt_tos == ["customer@example.com"]][0]
    # VERP (issue 11): a bounce of the acknowledgement comes back naming its outbox row
    assert verp_row(cfg.secret, ack.mail_from) == acks(d.engine)[0].id
    assert ack.rcpt_tos == ["customer@example.com"]
    m = ack.message
    assert m["Subject"] == f"[support #{t.id}] Grüße: Drucker kaputt"
    assert m["Auto-Submitted"] == "auto-replied"
    assert m["X-Mailgate-Loop"] == "helpdesk.example.test"
    assert m["In-Reply-To"] == t.articles[0].message_id
    assert f"support #{t.id}" in m.get_content()
    wait_until(lambda: acks(d.engine)[0].status == "sent")


def test_follow_up_by_tag_and_by_references(cfg, smtp_sink: SmtpSink):
    with running(cfg) as d:
        first = make_msgid(domain="example.com")
        d.send(message(message_id=first))
        smtp_sink.wait_for(1, timeout=15)
        ack = wait_until(lambda: to_customers(smtp_sink))[0].message
        tid = tickets(d.engine)[0].id
        # by subject tag only
        d.send(message(subject=f"Re: [support #{tid}] Printer is broken", body="Still broken.\n"))
        # by References only (to our ack's Message-ID), subject changed
        d.send(
            message(
                subject="another thing", references=ack["Message-ID"], in_reply_to=ack["Message-ID"]
            )
        )
        wait_until(lambda: article_count(d.engine) == 3)
        ts = tickets(d.engine)
    assert len(ts) == 1
    assert [a.kind for a in ts[0].articles] == ["inbound"] * 3
    assert len(to_customers(smtp_sink)) == 1  # follow-ups get no acknowledgement


def test_stranger_using_the_tag_gets_a_new_linked_ticket(cfg, smtp_sink: SmtpSink):
    with running(cfg) as d:
        d.send(message())
        smtp_sink.wait_for(1, timeout=15)
        tid = tickets(d.engine)[0].id
        d.send(
            message(sender="mallory@evil.example", subject=f"Re: [support #{tid}] hi"),
            sender="mallory@evil.example",
        )
        wait_until(lambda: len(tickets(d.engine)) == 2)
        ts = tickets(d.engine)
    assert ts[1].requester_addr == "mallory@evil.example"
    assert len(ts[0].articles) == 1


def test_auto_submitted_mail_gets_no_ack(cfg, smtp_sink: SmtpSink):
    with running(cfg) as d:
        d.send(message(sender="ooo@example.com", extra="Auto-Submitted: auto-replied"))
        d.send(message(sender="list@example.com", extra="Precedence: bulk"))
        d.send(message(sender="news@example.com", extra="List-Id: <news.example.com>"))
        d.send(message(sender="real@example.com"))
        smtp_sink.wait_for(1, timeout=15)
        wait_until(lambda: len(tickets(d.engine)) == 3 and junk_rows(d.engine))
        rows = acks(d.engine)
        (junk,) = junk_rows(d.engine)
    assert [r.rcpt_tos for r in rows] == [["real@example.com"]]
    # an auto-reply that belongs to no ticket opens none (issue 11: it used to): quarantined
    assert junk.from_addr == "ooo@example.com" and "Auto-Submitted" in junk.reason


def test_two_queue_addresses_make_one_ticket_and_one_ack(cfg, smtp_sink: SmtpSink):
    with running(cfg) as d:
        raw = message(to="support@example.test, billing@example.test")
        d.send(raw, rcpts=["support@example.test", "billing@example.test"])
        # the same message delivered again, separately, to one address (MTA split/retry)
        d.send(raw, rcpts=["billing@example.test"])
        smtp_sink.wait_for(1, timeout=15)
        wait_until(lambda: d.daemon.spool.pending() == 0)
        wait_until(lambda: not list((cfg.spool_dir / "claimed").glob("*.eml")))
        ts = tickets(d.engine)
    assert len(ts) == 1
    assert {q.queue for q in ts[0].queues} == {"support", "billing"}
    assert len(ts[0].articles) == 1
    assert len(to_customers(smtp_sink)) == 1


def test_unknown_recipient_is_refused_at_rcpt(cfg):
    with running(cfg) as d, smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
        s.ehlo()
        s.mail("customer@example.com")
        code, _ = s.rcpt("nobody@example.test")
        assert code == 550
        code, _ = s.rcpt("sales@example.test")
        assert code == 250


def test_every_new_ticket_is_acknowledged_a_reply_once_per_period(cfg, smtp_sink: SmtpSink):
    # issue 10: the old one-per-period limit left a customer's second and third tickets
    # unacknowledged; now each new ticket is (the governor caps per address), and the
    # period guards only replies that start a ticket (as a responder's would)
    with running(cfg) as d:
        for i in range(3):
            d.send(message(subject=f"question {i}"))
        wait_until(lambda: len(tickets(d.engine)) == 3)
        smtp_sink.wait_for(3, timeout=15)
        for i in range(2):
            d.send(message(subject=f"Re: elsewhere {i}", in_reply_to=f"<other{i}@example.com>"))
        wait_until(lambda: len(tickets(d.engine)) == 5)
    assert len(acks(d.engine)) == 3
    numbers = {str(c.message["Subject"]) for c in smtp_sink.messages}
    assert len(numbers) == 3


def test_customer_subject_cannot_inject_headers(cfg, smtp_sink: SmtpSink):
    with running(cfg) as d:
        d.send(message(subject="=?utf-8?q?hi=0D=0ABcc=3A_victim=40example=2Eorg?="))
        ack = wait_until(lambda: to_customers(smtp_sink))[0]
    assert ack.message["Bcc"] is None
    assert ack.rcpt_tos == ["customer@example.com"]


def test_reply_to_closed_ticket_reopens_it(cfg, smtp_sink: SmtpSink):
    from sqlalchemy import update

    from mailgate.db.models import Ticket

    with running(cfg) as d:
        d.send(message())
        smtp_sink.wait_for(1, timeout=15)
        tid = tickets(d.engine)[0].id
        with d.engine.begin() as conn:
            conn.execute(update(Ticket).where(Ticket.id == tid).values(status="closed"))
        d.send(message(subject=f"Re: [support #{tid}] Printer is broken"))
        wait_until(lambda: tickets(d.engine)[0].status == "reopened")
        assert len(tickets(d.engine)) == 1
