"""Agents work by mail: notifications, reply tokens, commands, answers — over real sockets.

Every test runs the real daemon (SMTP listener -> spool -> worker -> DB -> sender) against
the real aiosmtpd sink as the relay, and reads what reached the sink.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.agents import tokens
from mailgate.agents.reply import REPLY_MARKER
from mailgate.config.model import Config
from mailgate.db.models import Article, AuditEvent, Ticket, TicketCc, TicketTag
from tests.harness import RunningDaemon, load, message, running, tickets, wait_until, write_config
from tests.servers import CapturedMessage, SmtpSink

AGENTS_TOML = """
[[agents]]
name = "alice"
address = "alice@example.test"
full_name = "Alice Example"
description = "Senior engineer"
signature = "Alice\\nExample Support - example.test"
queues = ["support", "billing"]
tier = "L2"
role = "admin"

[[agents]]
name = "bob"
address = "bob@example.test"
full_name = "Bob Example"
description = "Support engineer"
signature = "Bob"
queues = ["support", "sales"]
tier = "L1"
role = "agent"

[[agents]]
name = "carol"
address = "carol@example.test"
full_name = "Carol Example"
description = "Billing"
queues = ["billing"]
tier = "L3"
team_lead = true
"""
NOTIFY = "[agent_mail]\nnotify = true\n"


def agents_config(tmp_path, sink: SmtpSink, extra: str = "") -> Config:
    queue_extra = {name: NOTIFY + extra for name in ("support", "billing", "sales")}
    return load(
        write_config(
            tmp_path, relay_port=sink.port, agents_toml=AGENTS_TOML, queue_extra=queue_extra
        )
    )


@dataclass
class Desk:
    """The running daemon, the sink, and helpers to act as customer and agents."""

    d: RunningDaemon
    sink: SmtpSink
    cfg: Config

    def mails(self, pred: Callable[[CapturedMessage], bool]) -> list[CapturedMessage]:
        return [m for m in self.sink.messages if pred(m)]

    def wait_mail(
        self, to: str, subject_has: str = "", n: int = 1, timeout: float = 15
    ) -> list[EmailMessage]:
        def found() -> list[CapturedMessage]:
            got = self.mails(
                lambda m: to in m.rcpt_tos and subject_has in str(m.message["Subject"])
            )
            return got if len(got) >= n else []

        return [m.message for m in wait_until(found, timeout)]

    def customer(self, **kw) -> str:
        mid = kw.pop("message_id", None) or make_msgid(domain="example.com")
        self.d.send(message(message_id=mid, **kw), rcpts=[kw.get("to", "support@example.test")])
        return mid

    def new_ticket(self, **kw) -> tuple[Ticket, str]:
        before = len(tickets(self.d.engine))
        mid = self.customer(**kw)
        wait_until(lambda: len(tickets(self.d.engine)) > before)
        return tickets(self.d.engine)[-1], mid

    def address(self, agent: str, ticket_id: int, queue: str = "support") -> str:
        return tokens.reply_address(self.cfg.secret, agent, ticket_id, f"{queue}@example.test")

    def agent(
        self,
        agent: str,
        ticket_id: int,
        body: str,
        *,
        subject: str = "Re: notification",
        queue: str = "support",
        date: datetime | None = None,
        message_id: str | None = None,
        to: str | None = None,
        extra: str = "",
        name: str = "",
    ) -> str:
        """Send a mail as an agent to their reply address for the ticket."""
        addr = to or self.address(agent, ticket_id, queue)
        mid = message_id or make_msgid(domain="example.test")
        raw = message(
            sender=f"{agent}@example.test",
            name=name or agent.capitalize(),
            to=addr,
            subject=subject,
            body=body,
            message_id=mid,
            date=date,
            extra=extra,
        )
        self.d.send(raw, rcpts=[addr], sender=f"{agent}@example.test")
        return mid

    def ticket(self, tid: int) -> Ticket:
        return next(t for t in tickets(self.d.engine) if t.id == tid)

    def audit(self, action: str) -> list[AuditEvent]:
        with Session(self.d.engine) as s:
            rows = list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))
            s.expunge_all()
            return rows

    def articles(self, tid: int, kind: str) -> list[Article]:
        return [a for a in self.ticket(tid).articles if a.kind == kind]

    def tags(self, tid: int) -> set[str]:
        with Session(self.d.engine) as s:
            return set(s.scalars(select(TicketTag.tag).where(TicketTag.ticket_id == tid)))

    def ccs(self, tid: int) -> set[str]:
        with Session(self.d.engine) as s:
            return set(s.scalars(select(TicketCc.address).where(TicketCc.ticket_id == tid)))


@pytest.fixture
def desk(tmp_path, smtp_sink: SmtpSink) -> Iterator[Desk]:
    cfg = agents_config(tmp_path, smtp_sink)
    with running(cfg) as d:
        yield Desk(d, smtp_sink, cfg)


def text_of(m: EmailMessage) -> str:
    """The text of a mail; of its plain part when it has an HTML part beside it."""
    if m.is_multipart():
        m = m.get_body(("plain",))  # type: ignore[assignment]
    return str(m.get_content()).replace("\r\n", "\n")


# --------------------------------------------------------------------------- notifications


def test_new_ticket_notifies_the_queue_with_latest_tickets_on_top(desk: Desk):
    old, _ = desk.new_ticket(subject="Old problem")
    desk.wait_mail("bob@example.test", f"#{old.id}]")
    t, _ = desk.new_ticket(subject="Printer broken", body="It smokes.\n")
    for agent in ("alice", "bob"):
        (m,) = desk.wait_mail(f"{agent}@example.test", f"[support #{t.id}] New")
        body = text_of(m)
        assert body.startswith(REPLY_MARKER)
        assert body.index("Latest tickets from") < body.index(f"Ticket #{t.id}: Printer broken")
        assert f"#{old.id}" in body and "Old problem" in body
        assert "It smokes." in body
        assert m["Reply-To"] == desk.address(agent, t.id)
        assert m["X-Mailgate-Command-Address"] == desk.address(agent, 0)
        assert m["Auto-Submitted"] == "auto-generated"
    assert not desk.mails(lambda m: "carol@example.test" in m.rcpt_tos)  # not her queue


def test_customer_reply_notifies_queue_unless_sticky(desk: Desk):
    t, _ = desk.new_ticket()
    desk.wait_mail("bob@example.test", "New")
    desk.agent("bob", t.id, "#pickup\n")
    wait_until(lambda: desk.ticket(t.id).assignee == "bob")
    # not sticky: the reply makes it unassigned and the whole queue hears of it
    desk.customer(subject=f"Re: [support #{t.id}] Printer is broken", body="Any news?\n")
    (m,) = desk.wait_mail("alice@example.test", "Customer reply")
    assert "back in the queue" in text_of(m) and "Any news?" in text_of(m)
    desk.wait_mail("bob@example.test", "Customer reply")
    assert desk.ticket(t.id).assignee is None
    # sticky: it stays with bob and only bob hears of it
    desk.agent("bob", t.id, "#pickup\n#sticky on\n")
    wait_until(lambda: desk.ticket(t.id).sticky and desk.ticket(t.id).assignee == "bob")
    desk.customer(subject=f"Re: [support #{t.id}] Printer is broken", body="Hello??\n")
    (m,) = desk.wait_mail("bob@example.test", "Customer reply", n=2)[1:]
    assert "stays assigned to you" in text_of(m)
    assert desk.ticket(t.id).assignee == "bob"
    to_alice = desk.mails(lambda m: "alice@" in m.rcpt_tos[0] and "reply" in m.message["Subject"])
    assert len(to_alice) == 1


# --------------------------------------------------------------------------- the answer


def test_answer_reaches_the_customer_threaded_without_notes_or_quotes(desk: Desk):
    t, first_mid = desk.new_ticket(subject="Printer broken", body="It smokes.\n")
    (note,) = desk.wait_mail("bob@example.test", "New")
    desk.agent("alice", t.id, "#note\nInternal: customer owes us money, be careful.\n")
    wait_until(lambda: desk.articles(t.id, "note"))
    later = desk.customer(
        subject=f"Re: [support #{t.id}] Printer broken", body="Now it is on fire.\n"
    )
    wait_until(lambda: len(desk.articles(t.id, "inbound")) == 2)
    quoted = "\n".join("> " + line for line in text_of(note).splitlines())
    desk.agent(
        "bob",
        t.id,
        "#priority 80\n\nHello Carla,\nplease unplug it.\n\nBob\n\n"
        f"On Mon, 1 Jan 2024, Example Support <{desk.address('bob', t.id)}> wrote:\n{quoted}\n",
        subject=f"Re: {note['Subject']}",
    )
    (m,) = desk.wait_mail("customer@example.com", f"#{t.id}]", n=2)[1:]
    body = text_of(m)
    assert m["From"] == '"Bob Example, Support engineer" <support@example.test>'
    assert m["Subject"] == f"[support #{t.id}] Printer broken"
    assert m["In-Reply-To"] == later
    assert m["References"].split()[-1] == later and first_mid in m["References"]
    assert "please unplug it." in body and "-- \nBob Example, Support engineer\nBob\n" in body
    for secret in ("owes us money", REPLY_MARKER, "It smokes", "wrote:", "+t", "#priority"):
        assert secret not in body, secret
    assert "Reply-To" not in m
    ticket = desk.ticket(t.id)
    assert ticket.status == "answered" and ticket.priority == 80
    assert ticket.first_response_at is not None and ticket.last_answer_at is not None
    (out,) = desk.articles(t.id, "outbound")
    assert out.author == "bob" and out.message_id == m["Message-ID"]
    # the customer's reply to the answer threads back into the ticket
    desk.customer(subject="Re: thanks", in_reply_to=m["Message-ID"], body="Unplugged.\n")
    wait_until(lambda: len(desk.articles(t.id, "inbound")) == 3)


def test_html_only_reply_is_read_from_its_text_rendering(desk: Desk):
    t, _ = desk.new_ticket()
    desk.wait_mail("bob@example.test", "New")
    html = (
        "<html><body><div>#pickup</div><div>#tag +printer</div><p>Hi Carla, fixed.</p>"
        f"<blockquote><p>{REPLY_MARKER}</p><p>history</p></blockquote></body></html>"
    )
    addr = desk.address("bob", t.id)
    raw = (
        f"From: Bob <bob@example.test>\r\nTo: {addr}\r\nSubject: Re: x\r\n"
        f"Date: {datetime.now(UTC).strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
        f"Message-ID: {make_msgid(domain='example.test')}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/html; charset="utf-8"\r\n\r\n' + html
    ).encode()
    desk.d.send(raw, rcpts=[addr], sender="bob@example.test")
    wait_until(lambda: desk.ticket(t.id).assignee == "bob")
    assert desk.tags(t.id) == {"printer"}
    (m,) = desk.wait_mail("customer@example.com", f"#{t.id}]", n=2)[1:]
    assert "Hi Carla, fixed." in text_of(m) and "history" not in text_of(m)


# --------------------------------------------------------------------------- every command


def test_every_ticket_command(desk: Desk):
    t, _ = desk.new_ticket()
    desk.wait_mail("alice@example.test", "New")
    steps: list[tuple[str, str, Callable[[Ticket], bool]]] = [
        ("bob", "#pickup", lambda x: x.assignee == "bob" and x.status == "open"),
        ("bob", "#release", lambda x: x.assignee is None),
        ("bob", "#assign me", lambda x: x.assignee == "bob"),
        ("alice", "#assign nobody", lambda x: x.assignee is None),
        ("alice", "#assign bob", lambda x: x.assignee == "bob"),
        ("bob", "#priority 70", lambda x: x.priority == 70),
        ("bob", "#priority +5", lambda x: x.priority == 75),
        ("bob", "#priority -10", lambda x: x.priority == 65),
        ("bob", "#status on-hold", lambda x: x.status == "on-hold"),
        ("bob", "#status resolved", lambda x: x.status == "resolved" and x.resolved_at),
        ("bob", "#status open", lambda x: x.status == "open" and x.resolved_at is None),
        ("bob", "#sticky on", lambda x: x.sticky),
        ("bob", "#sticky off", lambda x: not x.sticky),
        ("bob", "#title Printer on fire", lambda x: x.title == "Printer on fire"),
        ("bob", "#requester carla@example.org", lambda x: x.requester_addr == "carla@example.org"),
        ("alice", "#complexity hard", lambda x: x.complexity == "hard"),
        ("bob", "#escalate reinstalled the driver, still smoking", lambda x: x.tier == "L2"),
        ("alice", "#queue billing\n#note\nasks for a refund", lambda x: x.queue == "billing"),
        ("alice", "#close", lambda x: x.status == "closed" and x.closed_at),
    ]
    for agent, text, check in steps:
        desk.agent(agent, t.id, text + "\n")
        wait_until(lambda check=check: check(desk.ticket(t.id)), timeout=15)
    desk.agent("bob", t.id, "#tag +printer +urgent\n#cc +dan@example.com\n")
    wait_until(lambda: desk.tags(t.id) == {"printer", "urgent"})
    desk.agent("bob", t.id, "#tag -urgent\n#cc -dan@example.com +eve@example.com\n")
    wait_until(lambda: desk.tags(t.id) == {"printer"} and desk.ccs(t.id) == {"eve@example.com"})
    # every executed command is audited with its line and confirmed to the agent
    audited = [e.detail["line"] for e in desk.audit("command")]
    assert audited.count("#pickup") == 1 and "#close" in audited and len(audited) == 24
    wait_until(
        lambda: len(desk.mails(lambda m: "Done:" in m.message["Subject"])) == 21
    )  # one confirmation per mail
    # the escalation told the L2+ agents of the queue what was tried; the move told billing
    (esc,) = desk.wait_mail("alice@example.test", "Escalated")
    assert "reinstalled the driver" in text_of(esc)
    (moved,) = desk.wait_mail("carol@example.test", "Escalated")
    assert "asks for a refund" in text_of(moved)
    (assigned,) = desk.wait_mail("bob@example.test", "Assigned to you")
    assert "Alice Example" in text_of(assigned)
    # commands alone send no answer: the customer got the ack and the satisfaction survey
    # of #status resolved (issue 15); #close came after the requester changed to carla
    to_customer = desk.wait_mail("customer@example.com", n=2)
    assert len(to_customer) == 2 and "rate our support" in text_of(to_customer[1])
    (survey,) = desk.wait_mail("carla@example.org")
    assert "we have closed your request" in text_of(survey)


def test_refused_set_applies_nothing_and_mails_a_transcript(desk: Desk):
    t, _ = desk.new_ticket()
    desk.wait_mail("bob@example.test", "New")
    desk.agent(
        "bob",
        t.id,
        "#pickup\n#priority 500\n#complexity hard\n#frobnicate\n\nDear Carla, done.\n",
        subject="Re: fix",
    )
    (m,) = desk.wait_mail("bob@example.test", "Not applied")
    body = text_of(m)
    assert "Nothing was applied" in body
    for line, why in [
        ("#pickup", "fine, but not applied"),
        ("#priority 500", "1-99"),
        ("#complexity hard", "team leads and admins"),
        ("#frobnicate", "unknown command"),
    ]:
        row = next(r for r in body.splitlines() if line in r)
        assert why in row, row
    assert m["Reply-To"] == desk.address("bob", t.id)
    ticket = desk.ticket(t.id)
    assert ticket.assignee is None and ticket.priority == 50 and ticket.status == "new"
    (note,) = desk.articles(t.id, "note")
    assert "#frobnicate" in note.body_text and note.verdict["agent_mail"] == "refused"
    assert not desk.audit("command")
    assert len(desk.mails(lambda m: "customer@example.com" in m.rcpt_tos)) == 1  # the ack


def test_escalate_needs_a_reason(desk: Desk):
    t, _ = desk.new_ticket()
    desk.wait_mail("bob@example.test", "New")
    desk.agent("bob", t.id, "#escalate\nHello Carla, we are on it.\n")
    (m,) = desk.wait_mail("bob@example.test", "Not applied")
    assert "needs a note" in text_of(m)
    assert desk.ticket(t.id).tier == "L1"


# --------------------------------------------------------------------------- command address


def test_help_list_unassigned_show_and_new(desk: Desk):
    a, _ = desk.new_ticket(subject="First")
    b, _ = desk.new_ticket(subject="Second")
    desk.wait_mail("bob@example.test", "New", n=2)
    desk.agent("bob", a.id, "#pickup\n")
    desk.agent("bob", b.id, "#pickup\n#priority 90\n")
    wait_until(lambda: desk.ticket(b.id).priority == 90 and desk.ticket(a.id).assignee)
    desk.agent("bob", 0, "#help\n", subject="help")
    (m,) = desk.wait_mail("bob@example.test", "Done: help")
    assert "#escalate" in text_of(m) and m["Reply-To"] == desk.address("bob", 0)
    desk.agent("bob", 0, "#list\n", subject="list")
    (m,) = desk.wait_mail("bob@example.test", "Done: list")
    body = text_of(m)
    assert body.index(f"#{b.id} ") < body.index(f"#{a.id} ")  # highest priority first
    assert desk.address("bob", b.id) in body
    desk.agent("alice", 0, "#unassigned\n", subject="unassigned")
    c, _ = desk.new_ticket(subject="Third")
    desk.agent("alice", 0, f"#unassigned\n#show {a.id}\n", subject="show")
    (m,) = desk.wait_mail("alice@example.test", "Done: show")
    assert f"#{c.id}" in text_of(m) and f"Ticket #{a.id}: First" in text_of(m)
    # #new: a ticket for a customer, opened and answered by mail
    desk.agent(
        "bob",
        0,
        "#new dan@example.com\n#priority 70\n#pickup\n\nHello Dan,\nyour renewal is due.\n",
        subject="Your renewal",
    )
    wait_until(lambda: any(t.requester_addr == "dan@example.com" for t in tickets(desk.d.engine)))
    new = next(t for t in tickets(desk.d.engine) if t.requester_addr == "dan@example.com")
    assert (new.title, new.type, new.priority, new.assignee) == ("Your renewal", "agent", 70, "bob")
    (m,) = desk.wait_mail("dan@example.com", f"[support #{new.id}] Your renewal")
    assert "your renewal is due" in text_of(m)
    (n,) = desk.wait_mail("alice@example.test", f"[support #{new.id}] New")
    assert "opened by Bob Example" in text_of(n)


def test_secret_is_answered_through_pgp_store(desk: Desk):
    t, _ = desk.new_ticket()
    desk.agent("bob", 0, f"#secret {t.id}\n", subject="secret")
    (m,) = desk.wait_mail("bob@example.test", "Done: secret")
    assert f"#secret {t.id}: no decrypted PGP content" in text_of(m)
    assert [e.detail["reason"] for e in desk.audit("secret-refused")]


def test_new_on_a_ticket_address_is_refused(desk: Desk):
    t, _ = desk.new_ticket()
    desk.agent("bob", t.id, "#new dan@example.com\n")
    (m,) = desk.wait_mail("bob@example.test", "Not applied")
    assert "command address" in text_of(m)


# --------------------------------------------------------------------------- agent mail edge


def test_out_of_office_reply_from_an_agent_is_kept_not_run(desk: Desk):
    t, _ = desk.new_ticket()
    desk.wait_mail("bob@example.test", "New")
    # the acknowledgement first, so the count below is of what the auto-reply caused
    wait_until(lambda: desk.mails(lambda m: "customer@example.com" in m.rcpt_tos))
    desk.agent("bob", t.id, "#close\nI am out of office.\n", extra="Auto-Submitted: auto-replied")
    wait_until(lambda: desk.articles(t.id, "note"))
    assert desk.ticket(t.id).status == "new"
    assert len(desk.mails(lambda m: "customer@example.com" in m.rcpt_tos)) == 1
    assert not desk.mails(
        lambda m: "bob@example.test" in m.rcpt_tos and "Not" in m.message["Subject"]
    )


def test_same_message_to_two_addresses_runs_once(desk: Desk):
    t, _ = desk.new_ticket()
    mid = make_msgid(domain="example.test")
    desk.agent("bob", t.id, "#priority +10\n", message_id=mid)
    desk.agent(
        "bob", t.id, "#priority +10\n", message_id=mid, to=desk.address("bob", t.id, "billing")
    )
    wait_until(lambda: len(desk.audit("agent-mail-replayed")) == 1)
    assert desk.ticket(t.id).priority == 60


def test_stale_date_is_refused_with_a_reason(desk: Desk):
    t, _ = desk.new_ticket()
    desk.agent("bob", t.id, "#pickup\n", date=datetime.now(UTC) - timedelta(hours=73))
    (m,) = desk.wait_mail("bob@example.test", "Not applied")
    assert "more than 72 h ago" in text_of(m)
    assert desk.ticket(t.id).assignee is None


# --------------------------------------------------------------------------- PostgreSQL


def test_agent_flow_on_postgresql(tmp_path, smtp_sink: SmtpSink, pg_url: str):
    queue_extra = {name: NOTIFY for name in ("support", "billing", "sales")}
    cfg = load(
        write_config(
            tmp_path,
            relay_port=smtp_sink.port,
            agents_toml=AGENTS_TOML,
            queue_extra=queue_extra,
            database_url=pg_url,
        )
    )
    with running(cfg) as d:
        desk = Desk(d, smtp_sink, cfg)
        t, mid = desk.new_ticket(subject="On PostgreSQL")
        desk.wait_mail("bob@example.test", "New")
        desk.agent("bob", t.id, "#pickup\n#tag +pg\n#cc +dan@example.com\nHello from PG.\n")
        (m,) = desk.wait_mail("customer@example.com", f"#{t.id}]", n=2)[1:]
        assert m["In-Reply-To"] == mid and m["Cc"] == "dan@example.com"
        assert desk.ticket(t.id).status == "answered" and desk.tags(t.id) == {"pg"}
        desk.agent("bob", t.id, "#frobnicate\n")
        desk.wait_mail("bob@example.test", "Not applied")
        replayed = desk.agent("bob", 0, "#list\n", subject="list")
        desk.wait_mail("bob@example.test", "Done: list")
        desk.agent("bob", 0, "#list\n", subject="list", message_id=replayed)
        wait_until(lambda: desk.audit("agent-mail-replayed"))
        assert len(desk.wait_mail("bob@example.test", "Done: list")) == 1
