"""Satisfaction surveys end to end: the auto-close sweep and an agent's #status resolved /
#close ask for a rating; the customer's rating reply is stored on its ticket, never
reopens it and is never announced as a customer reply; an auto-reply is no rating."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mailgate.cli.tickets import print_ticket
from mailgate.db.models_satisfaction import satisfaction_surveys
from mailgate.pgp.keyring import Keyrings
from mailgate.pipeline.steps import Pipeline
from mailgate.pipeline.worker import Worker
from mailgate.spool import Envelope, Spool
from mailgate.store.articles import articles
from mailgate.store.outbox import outbox
from tests.harness import message, running, wait_until
from tests.integration.test_agents import Desk, agents_config, text_of
from tests.integration.test_scheduler import MONDAY, SLA, make_env, parsed
from tests.servers import SmtpSink

S = satisfaction_surveys.c


@pytest.fixture
def help_desk(tmp_path: Path, smtp_sink: SmtpSink) -> Iterator[Desk]:
    cfg = agents_config(tmp_path, smtp_sink)
    with running(cfg) as d:
        yield Desk(d, smtp_sink, cfg)


def surveys(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(satisfaction_surveys).order_by(S.id)).mappings().all()
        return [dict(r) for r in rows]


def test_auto_close_asks_and_the_rating_reply_is_kept_without_reopening(tmp_path: Path, capsys):
    env = make_env(tmp_path, {"support": SLA + "\n[close]\nafter_days = 2\n"})
    clock = [MONDAY]
    spool = Spool(env.config.spool_dir)
    worker = Worker(
        env.config, env.engine, spool, Pipeline(env.config, lambda: clock[0], keyrings=Keyrings())
    )

    def customer_writes(subject: str, body: str, at: datetime, extra: str = "") -> None:
        clock[0] = at
        envelope = Envelope(source="test", rcpt_tos=("support@example.test",))
        spool.put(
            message(
                sender="customer1@example.com", subject=subject, body=body, date=at, extra=extra
            ),
            envelope,
        )
        worker.drain()

    tid = env.ticket(MONDAY, answered=MONDAY + timedelta(hours=1), assignee="bob")
    closed_at = MONDAY + timedelta(days=3)
    env.sweep(closed_at)
    assert env.get(tid)["status"] == "closed"
    (mail,) = env.mails("closed")
    text = parsed(mail).get_content()
    assert "rate our support from 1 (poor) to 5 (excellent)" in text
    assert f"mailto:support@example.test?subject=Rating%204%20%5Bsupport%20%23{tid}%5D" in text
    assert "https://www.trustpilot.com/evaluate/example.test" in text  # SOP 000's review link
    (s,) = surveys(env.engine)
    assert (s["ticket_id"], s["agent"], s["trigger"], s["rating"]) == (
        tid,
        "bob",
        "auto-close",
        None,
    )

    # an out-of-office answering the survey: kept, not a rating
    subject = f"Re: [support #{tid}] Problem 1"
    customer_writes(subject, "5\n", closed_at + timedelta(hours=1), "Auto-Submitted: auto-replied")
    assert surveys(env.engine)[0]["rating"] is None
    # the customer's rating with a comment, quoting the survey
    later = closed_at + timedelta(hours=2)
    customer_writes(subject, "4\nQuick, but I had to ask twice.\n\n> How did we do?\n", later)
    (s,) = surveys(env.engine)
    assert (s["rating"], s["comment"], s["rated_at"]) == (
        4,
        "Quick, but I had to ask twice.",
        later,
    )
    t = env.get(tid)
    assert t["status"] == "closed" and t["assignee"] == "bob" and t["closed_at"] == closed_at
    assert env.audits("reopened") == [] and len(env.audits("rated")) == 1
    with env.engine.connect() as conn:
        rated = conn.execute(select(articles).where(articles.c.id == s["article_id"])).one()
    assert rated.auto and rated.ticket_id == tid  # kept on the ticket, inert
    # the link's mail (subject carries the number) changes the rating; no new ticket
    customer_writes(f"Rating 5 [support #{tid}]", "5", later + timedelta(hours=1))
    assert surveys(env.engine)[0]["rating"] == 5 and env.get(tid)["status"] == "closed"
    assert env.mails("ack") == []  # a rating is never acknowledged as a new ticket

    assert print_ticket(env.engine, tid) == 0
    assert "satisfaction survey (auto-close)" in capsys.readouterr().out
    # a real follow-up still reopens the ticket
    customer_writes(subject, "1. It broke again this morning.\n", later + timedelta(hours=2))
    assert env.get(tid)["status"] == "reopened"
    env.engine.dispose()


def test_agent_resolve_or_close_asks_once_and_the_rating_notifies_nobody(help_desk: Desk):
    desk = help_desk
    t, _ = desk.new_ticket(subject="Scanner jams")
    desk.wait_mail("alice@example.test", "New")
    desk.agent("bob", t.id, "#pickup\n#status resolved\n")
    (ask,) = desk.wait_mail("customer@example.com", "Scanner jams", n=2)[1:]
    body = text_of(ask)
    assert "we have resolved your request" in body and "rate our support" in body
    assert ask["Auto-Submitted"] == "auto-generated"
    wait_until(lambda: len(surveys(desk.d.engine)) == 1)
    assert surveys(desk.d.engine)[0]["agent"] == "bob"
    desk.agent("bob", t.id, "#status resolved\n")  # already resolved: not asked again
    wait_until(lambda: len(desk.audit("command")) == 3)

    desk.customer(subject=f"Re: [support #{t.id}] Scanner jams", body="2 - took three days\n")
    wait_until(lambda: surveys(desk.d.engine)[0]["rating"] == 2)
    assert surveys(desk.d.engine)[0]["comment"] == "took three days"
    ticket = desk.ticket(t.id)
    assert ticket.status == "resolved" and ticket.assignee == "bob"  # not a customer reply
    desk.agent("alice", t.id, "#close\n")  # resolved, then closed: one survey is enough
    wait_until(lambda: desk.ticket(t.id).status == "closed")
    other, _ = desk.new_ticket(subject="Toner empty")
    desk.agent("alice", other.id, "#close\n")
    wait_until(lambda: len(surveys(desk.d.engine)) == 2)
    (closing,) = desk.wait_mail("customer@example.com", "Toner empty", n=2)[1:]
    assert "we have closed your request" in text_of(closing)
    assert [s["trigger"] for s in surveys(desk.d.engine)] == ["resolved", "closed"]
    # the rating reply notified no agent (no "Customer reply" mail was ever queued)
    with desk.d.engine.connect() as conn:
        kinds = set(conn.execute(select(outbox.c.kind)).scalars())
    assert "notify-customer_reply" not in kinds and "notify-new_ticket" in kinds
