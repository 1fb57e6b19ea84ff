"""The outgoing builders: every mail mailgate sends, built from facts, checked header by header.

One table lists every builder of the family with the mail it makes. Agent mails carry the
reply marker, the footer, a Reply-To token bound to that agent and ticket, and the command
address; customer mails never carry a token; every mail carries Auto-Submitted and the loop
header; the Message-ID follows from the cause alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from email.utils import format_datetime
from pathlib import Path

import pytest

from mailgate.agents import tokens
from mailgate.agents.plan import LineResult
from mailgate.agents.reply import REPLY_MARKER
from mailgate.autoresponse.policy import ResponseDecision
from mailgate.config.model import Config, Queue
from mailgate.config.schema import Agent
from mailgate.outgoing import agent_mails, customer_mails
from mailgate.outgoing.builders import Thread, agent_only_headers
from mailgate.outgoing.compose import (
    LOOP_HEADER,
    OutAttachment,
    Outgoing,
    date_header,
    stable_message_id,
)
from mailgate.outgoing.digest import ArticleSummary, HeldNotice, TicketDigest
from mailgate.parse.message import parse
from mailgate.pipeline.decide import Decision, NewTicket
from tests.harness import load, message, write_config

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOST = "helpdesk.example.test"
AGENTS = """
[[agents]]
name = "alice"
address = "alice@example.test"
full_name = "Alice Example"
description = "Senior engineer"
signature = "Alice"
queues = ["support"]
tier = "L2"

[[agents]]
name = "bob"
address = "bob@example.test"
full_name = "Bob Example"
queues = ["support"]
"""


@dataclass(frozen=True)
class Facts:
    """A ticket as the scheduler's mails see it (builders.MailTicket)."""

    id: int = 12
    title: str = "Printer is broken"
    requester_addr: str = "carla@example.com"
    requester_name: str = "Carla Customer"
    priority: int = 95
    tier: str = "L2"
    first_mid: str = "<first@example.com>"
    last_mid: str = "<last@example.com>"


TICKET = Facts()
DIGEST = TicketDigest(
    id=12,
    title="Printer is broken",
    queue="support",
    status="open",
    priority=50,
    assignee="",
    sticky=False,
    tier="L1",
    requester="Carla Customer <carla@example.com>",
    ccs=(),
    tags=(),
    complexity="",
    created="2026-03-02 08:00 UTC",
    history=(),
    latest=(),
)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root: Path = tmp_path_factory.mktemp("builders")
    return load(write_config(root, agents_toml=AGENTS))


def _support(c: Config) -> Queue:
    q = c.queue("support")
    assert q is not None
    return q


def _agent(c: Config, name: str = "alice") -> Agent:
    a = c.agent(name)
    assert a is not None
    return a


def ack(c: Config, dedupe: str = "dedupe-1") -> Outgoing:
    p = parse(message(sender="carla@example.com", message_id="<m1@example.com>"))
    d = Decision(
        action="new",
        dedupe_key=dedupe,
        queues=("support",),
        ticket_id=None,
        new_ticket=NewTicket(p.subject, p.from_addr, p.from_name, "support", 50, (), None, ""),
        reopen=False,
        new_ccs=(),
        customer_activity=True,
        acknowledge=ResponseDecision(True, "new ticket acknowledgement"),
        reasons=(),
    )
    return customer_mails.ack(c, _support(c), 12, p, d, NOW)


def answer(c: Config, cause: str = "cause-1", text: str = "The driver is fixed.") -> Outgoing:
    out, body = customer_mails.answer(
        c,
        _support(c),
        _agent(c),
        ticket_id=12,
        requester=("Carla Customer", "carla@example.com"),
        ccs=("boss@example.com",),
        subject="[support #12] Printer is broken",
        text=text,
        thread=Thread.answering("<m1@example.com>"),
        cause=cause,
        now=NOW,
    )
    assert body.startswith(text)
    return out


def escalated(c: Config, key: str = "cause-1") -> Outgoing:
    return customer_mails.escalation_notice(
        c, _support(c), TICKET, tier="L2", reason="slow", expect_by="tomorrow", key=key, now=NOW
    )


def closed(c: Config, cause: str = "cause-1") -> Outgoing:
    when = NOW if cause == "cause-1" else None
    return customer_mails.closing(
        c, _support(c), TICKET, days=3, review_link="", answered_at=when, now=NOW
    )


def survey(c: Config, cause: str = "cause-1") -> Outgoing:
    q = _support(c)
    block = customer_mails.survey_block(c, q, TICKET, "https://reviews.example/acme")
    return customer_mails.resolved_notice(
        c, q, TICKET, status="resolved", satisfaction=block, cause=cause, now=NOW
    )


def test_the_survey_asks_for_1_to_5_with_links_that_carry_the_rating(config: Config):
    text = _parsed(survey(config)).get_content()
    assert "rate our support from 1 (poor) to 5 (excellent)" in text
    for n in range(1, 6):
        link = f"mailto:support@example.test?subject=Rating%20{n}%20%5Bsupport%20%2312%5D&body={n}"
        assert link in text
    assert "https://reviews.example/acme" in text and "resolved your request" in text
    closing = customer_mails.closing(
        config,
        _support(config),
        TICKET,
        days=3,
        review_link="",
        answered_at=NOW,
        now=NOW,
        satisfaction="RATE-US-BLOCK",
    )
    assert "RATE-US-BLOCK" in _parsed(closing).get_content()


def notification(event: str) -> Callable[..., Outgoing]:
    def build(c: Config, cause: str = "cause-1", agent: str = "alice") -> Outgoing:
        [out] = agent_mails.notifications(
            c, _support(c), [_agent(c, agent)], event, DIGEST, cause=cause, now=NOW, actor="Bob"
        )
        return out

    return build


FILE = OutAttachment("Rechnung.pdf", "application/pdf", b"%PDF-1.4 x", "<c1@example.com>")


def answer_with_file(c: Config, cause: str = "cause-1") -> Outgoing:
    out, _ = customer_mails.answer(
        c,
        _support(c),
        _agent(c),
        ticket_id=12,
        requester=("Carla Customer", "carla@example.com"),
        ccs=(),
        subject="[support #12] Printer is broken",
        text="The credit note is attached.",
        thread=Thread.answering("<m1@example.com>"),
        cause=cause,
        now=NOW,
        attachments=(FILE,),
    )
    return out


def notification_with_files(c: Config, cause: str = "cause-1", agent: str = "alice") -> Outgoing:
    [out] = agent_mails.notifications(
        c,
        _support(c),
        [_agent(c, agent)],
        "new_ticket",
        DIGEST,
        cause=f"files-{cause}",
        now=NOW,
        attachments=(FILE,),
        attachment_list="Attachments:\n  [3] Rechnung.pdf (application/pdf, 10 bytes) - attached",
    )
    return out


def no_token_notice(c: Config, cause: str = "cause-1", agent: str = "alice") -> Outgoing:
    return agent_mails.no_token_notice(
        c,
        _support(c),
        _agent(c, agent),
        ticket_id=12,
        subject="Re: [support #12] New ticket",
        in_reply_to="<a1@example.test>",
        cause=cause,
        now=NOW,
    )


def result(ok: bool) -> Callable[..., Outgoing]:
    def build(c: Config, cause: str = "cause-1", agent: str = "alice") -> Outgoing:
        return agent_mails.command_result(
            c,
            _support(c),
            _agent(c, agent),
            ok=ok,
            lines=(LineResult(1, "#priority 60", ok, "set" if ok else "wrong"),),
            ticket_id=12,
            subject="Re: [support #12] Printer is broken",
            in_reply_to="<agent-reply@example.test>",
            cause=cause,
            now=NOW,
            headline="Done." if ok else "Nothing was applied.",
        )

    return build


def escalation(c: Config, cause: str = "cause-1", agent: str = "alice") -> Outgoing:
    return agent_mails.escalation_alert(
        c,
        _support(c),
        TICKET,
        _agent(c, agent),
        from_tier="L1",
        to_tier="L2",
        reason="first response target missed",
        due="2026-03-03 14:15 CET",
        priority_class="critical",
        team_lead=False,
        key=cause,
        now=NOW,
    )


def reminder(reason: str) -> Callable[..., Outgoing]:
    def build(c: Config, cause: str = "cause-1", agent: str = "alice") -> Outgoing:
        return agent_mails.reminder(
            c,
            _support(c),
            TICKET,
            _agent(c, agent),
            reason=reason,
            idle="1 day",
            last_update="2026-03-01 09:00 CET",
            shift_end="2026-03-02 17:00 CET",
            cause=(reason, cause),
            now=NOW,
        )

    return build


def digest(c: Config, cause: str = "cause-1", agent: str = "alice") -> Outgoing:
    return agent_mails.digest_mail(
        c,
        _support(c),
        _agent(c, agent),
        DIGEST,
        held=(
            HeldNotice("2026-03-02 10:00 UTC", "Customer reply", "[support #12] Customer reply"),
        ),
        notes=(ArticleSummary("2026-03-02 10:05 UTC", "system", "mailgate", "Bounce: 550"),),
        cause=cause,
        now=NOW,
    )


# name: (builder, Auto-Submitted)
CUSTOMER: dict[str, tuple[Callable[..., Outgoing], str]] = {
    "ack": (ack, "auto-replied"),
    "answer": (answer, "no"),
    "answer-with-file": (answer_with_file, "no"),
    "escalated": (escalated, "auto-generated"),
    "closed": (closed, "auto-generated"),
    "survey": (survey, "auto-generated"),
}
AGENT: dict[str, Callable[..., Outgoing]] = {
    **{f"notify-{e}": notification(e) for e in agent_mails.EVENTS},
    "notify-with-files": notification_with_files,
    "agent-no-token": no_token_notice,
    "agent-result": result(True),
    "agent-error": result(False),
    "escalation": escalation,
    "reminder-update": reminder("update"),
    "reminder-shift": reminder("shift_notes"),
    "digest": digest,
}


@pytest.mark.parametrize("name", CUSTOMER)
def test_customer_mail_comes_from_the_queue_and_carries_no_token(config: Config, name: str):
    build, auto_submitted = CUSTOMER[name]
    out = build(config)
    m = _parsed(out)
    assert m["From"].addresses[0].addr_spec == "support@example.test"
    assert m["To"].addresses[0].addr_spec == "carla@example.com"
    assert "[support #12]" in m["Subject"]
    assert m["Auto-Submitted"] == auto_submitted
    assert m[LOOP_HEADER] == HOST
    assert m["Reply-To"] is None and m["X-Mailgate-Command-Address"] is None
    assert not tokens.contains_token(out.raw.decode("utf-8", "replace"))
    for agent in ("alice", "bob"):
        for tid in (0, 12):
            assert tokens.token_mac(config.secret, agent, tid) not in out.raw.decode()
    assert REPLY_MARKER not in _body(m)
    assert out.ticket_id == 12 and out.rcpt_tos[0] == "carla@example.com"
    # every mail's envelope sender is the queue address, made the row's VERP address by
    # the sender so a bounce finds its ticket (issue 11; before, automatic mail had none)
    assert out.mail_from == "support@example.test"


@pytest.mark.parametrize("name", AGENT)
def test_agent_mail_carries_marker_footer_token_and_command_address(config: Config, name: str):
    out = AGENT[name](config)
    m = _parsed(out)
    queue = "support@example.test"
    body = _body(m)
    assert body.startswith(REPLY_MARKER)
    command_address = tokens.command_address(config.secret, "alice", queue)
    assert m["X-Mailgate-Command-Address"] == command_address
    assert (
        f"Your command address (for #new, #list, #unassigned, #show N, #help):\n  {command_address}"
        in body
    )
    reply = tokens.parse_reply_address(m["Reply-To"])
    assert reply is not None and reply.queue_address == queue
    assert (reply.ticket_id, reply.mac) == (12, tokens.token_mac(config.secret, "alice", 12))
    assert m["X-Mailgate-Ticket"] == "12"
    assert m["Auto-Submitted"] == "auto-generated"
    assert m[LOOP_HEADER] == HOST
    assert m["From"].addresses[0].addr_spec == queue
    assert m["From"].addresses[0].display_name == "Example Support (mailgate)"
    assert out.rcpt_tos == ("alice@example.test",) and out.mail_from == queue
    assert "[support #12]" in m["Subject"]


@pytest.mark.parametrize("name", AGENT)
def test_the_token_is_bound_to_the_agent_the_mail_goes_to(config: Config, name: str):
    m = _parsed(AGENT[name](config, agent="bob"))
    reply = tokens.parse_reply_address(m["Reply-To"])
    assert reply is not None
    assert tokens.verify(config.secret, "bob", 12, reply.mac)
    assert not tokens.verify(config.secret, "alice", 12, reply.mac)
    assert not tokens.verify(config.secret, "bob", 13, reply.mac)
    assert m["To"].addresses[0].addr_spec == "bob@example.test"


@pytest.mark.parametrize("name", [*CUSTOMER, *AGENT])
def test_message_id_follows_from_the_cause(config: Config, name: str):
    build = CUSTOMER[name][0] if name in CUSTOMER else AGENT[name]
    if name == "ack":
        first, again, other = ack(config), ack(config), ack(config, "dedupe-2")
    else:
        first, again, other = build(config), build(config), build(config, "cause-2")
    assert first.message_id == again.message_id and first.raw == again.raw
    assert other.message_id != first.message_id
    assert first.message_id.endswith(f"@{HOST}>")


def test_message_ids_are_the_ones_the_old_builders_made(config: Config):
    # the outbox refuses a second mail with the same Message-ID: a mail caused again
    # after an upgrade must get the id it had before
    def mid(kind: str, *cause: object) -> str:
        return stable_message_id(HOST, kind, *cause)

    assert ack(config).message_id == mid("ack", "dedupe-1")
    assert answer(config).message_id == mid("answer", "cause-1")
    assert escalated(config).message_id == mid("escalated", 12, "cause-1")
    assert closed(config).message_id == mid("closed", 12, NOW.isoformat())
    new = AGENT["notify-new_ticket"](config)
    assert new.message_id == mid("notify-new_ticket", "alice", "new_ticket\x1f12\x1fcause-1")
    assert AGENT["agent-result"](config).message_id == mid("agent-result", "alice", "cause-1")
    assert escalation(config).message_id == mid("escalation", 12, "cause-1", "alice")
    remind = AGENT["reminder-update"](config)
    assert remind.message_id == mid("reminder", 12, "update", "cause-1", "alice")


@pytest.mark.parametrize(
    ("name", "in_reply_to", "references"),
    [
        ("ack", "<m1@example.com>", "<m1@example.com>"),
        ("answer", "<m1@example.com>", "<m1@example.com>"),
        ("escalated", "<last@example.com>", "<first@example.com> <last@example.com>"),
        ("closed", "<last@example.com>", "<first@example.com> <last@example.com>"),
        ("escalation", "<last@example.com>", "<first@example.com> <last@example.com>"),
        ("reminder-update", "<last@example.com>", "<first@example.com> <last@example.com>"),
        ("agent-result", "<agent-reply@example.test>", "<agent-reply@example.test>"),
        ("notify-new_ticket", None, None),
    ],
)
def test_threading(config: Config, name: str, in_reply_to: str | None, references: str | None):
    build = CUSTOMER[name][0] if name in CUSTOMER else AGENT[name]
    m = _parsed(build(config))
    assert m["In-Reply-To"] == in_reply_to
    assert (" ".join(m["References"].split()) if m["References"] else None) == references


def test_subjects(config: Config):
    subjects = {name: _parsed(AGENT[name](config))["Subject"] for name in AGENT}
    assert subjects["notify-new_ticket"] == "[support #12] New: Printer is broken"
    assert subjects["agent-result"] == "Done: Re: [support #12] Printer is broken"
    assert subjects["agent-error"] == "Not applied: Re: [support #12] Printer is broken"
    assert subjects["escalation"] == "[support #12] Escalated to Tier 2: Printer is broken"
    assert subjects["reminder-update"] == "[support #12] Reminder, no update: Printer is broken"
    assert subjects["reminder-shift"] == (
        "[support #12] Reminder, no shift notes: Printer is broken"
    )
    assert _parsed(closed(config))["Subject"] == "[support #12] Printer is broken"


def test_an_answer_holding_a_token_is_refused(config: Config):
    token = tokens.reply_address(config.secret, "alice", 12, "support@example.test")
    with pytest.raises(ValueError, match="reply token"):
        answer(config, text=f"write to {token}")


def test_an_answer_is_signed_by_the_agent_and_goes_to_the_ccs(config: Config):
    out = answer(config)
    m = _parsed(out)
    assert m["From"].addresses[0].display_name == "Alice Example, Senior engineer"
    assert m["Cc"] == "boss@example.com"
    assert out.rcpt_tos == ("carla@example.com", "boss@example.com")
    assert "Alice" in _body(m).split("-- \n", 1)[1]


def test_a_result_on_the_command_address_replies_to_the_command_address(config: Config):
    out = agent_mails.command_result(
        config,
        _support(config),
        _agent(config),
        ok=True,
        lines=(),
        ticket_id=0,
        subject="",
        in_reply_to="",
        cause="c",
        now=NOW,
        headline="Done.",
    )
    m = _parsed(out)
    command_address = tokens.command_address(config.secret, "alice", "support@example.test")
    assert m["Reply-To"] == command_address == m["X-Mailgate-Command-Address"]
    assert m["X-Mailgate-Ticket"] is None and out.ticket_id is None
    assert m["Subject"] == "Done: your mail"


def test_scheduler_agent_mails_name_the_reply_address_in_the_body(config: Config):
    for name in ("escalation", "reminder-update", "reminder-shift"):
        m = _parsed(AGENT[name](config))
        words = " ".join(_body(m).split())
        assert f"(it goes to {m['Reply-To']})" in words
        assert "Hello Alice Example," in words


def _parsed(out: Outgoing) -> EmailMessage:
    m = message_from_bytes(out.raw, policy=default)
    assert isinstance(m, EmailMessage)
    return m


def _body(m: EmailMessage) -> str:
    text = m.get_body(("plain",)) if m.is_multipart() else m
    assert isinstance(text, EmailMessage)
    return text.get_content().replace("\r\n", "\n")


def test_files_travel_as_multipart_mixed_with_their_content_id(config: Config):
    for out in (answer_with_file(config), notification_with_files(config)):
        m = _parsed(out)
        assert m.get_content_type() == "multipart/mixed"
        (part,) = list(m.iter_attachments())
        assert part.get_filename() == "Rechnung.pdf" and part.get_content() == FILE.data
        assert part["Content-ID"] == "<c1@example.com>"
        assert m["Auto-Submitted"] and m["X-Mailgate-Loop"]


def test_the_secret_answer_is_automatic_and_never_routes_a_reply_back(config: Config):
    alice = _agent(config)
    headers = dict(
        agent_only_headers(
            config,
            _support(config),
            alice,
            subject="[support #12] Secured",
            message_id="<s@x>",
            now=NOW,
        )
    )
    assert headers["Auto-Submitted"] == "auto-generated" and headers[LOOP_HEADER]
    assert headers["Reply-To"] == "alice@example.test"  # not the queue, not a token
    assert not tokens.contains_token(headers["Reply-To"] + headers["From"])
    command = tokens.parse_reply_address(headers["X-Mailgate-Command-Address"])
    assert command is not None and command.ticket_id == tokens.COMMAND_TICKET
    assert command.mac == tokens.token_mac(config.secret, "alice", tokens.COMMAND_TICKET)


def test_a_digest_lists_what_was_held_and_the_system_notes(config: Config):
    m = _parsed(digest(config))
    assert m["Subject"] == "[support #12] Digest, 1 more notification(s): Printer is broken"
    body = m.get_body(("plain",)).get_content()
    assert "2026-03-02 10:00 UTC  Customer reply: [support #12] Customer reply" in body
    assert "Bounce: 550" in body and "runs nothing" in body
    assert agent_mails.answers_digest(parse(message(in_reply_to=digest(config).message_id)))
    assert not agent_mails.answers_digest(parse(message(in_reply_to="<x@example.test>")))


@pytest.mark.parametrize(
    "zone",
    [
        UTC,
        timezone(timedelta(hours=-5)),
        timezone(timedelta(hours=5, minutes=30)),
        timezone(timedelta(hours=-3, minutes=-30)),
        timezone(timedelta(hours=23, minutes=59)),
        timezone(timedelta(seconds=3661)),  # not whole minutes: as email.utils writes it
        None,  # naive: -0000
    ],
)
def test_the_date_header_is_what_email_utils_writes(zone):
    for dt in (
        datetime(2026, 12, 1, 18, 5, 9, 123456),
        datetime(1, 1, 1, 0, 0, 0),
        datetime(9999, 12, 31, 23, 59, 59),
        datetime(2024, 2, 29, 12, 0, 0),
    ):
        for day in range(7):  # every weekday
            local = (dt + timedelta(days=day) if dt.year < 9999 else dt).replace(tzinfo=zone)
            assert date_header(local) == format_datetime(local)


def test_an_edited_notification_template_is_used_from_the_next_second_of_the_clock(
    tmp_path: Path,
):
    """A notification's body and its agent footer are rendered with the mail's clock: their
    files are checked once per second of it (autoresponse/render.py), so an admin's edit
    reaches the notifications of the next second on, without a reload."""
    c = load(write_config(tmp_path, agents_toml=AGENTS))
    own = Path(c.templates_dir) / "support"
    own.mkdir(parents=True, exist_ok=True)
    body, footer = own / "notify_new_ticket.txt", own / "_agent_footer.txt"
    body.write_text("BODY-ONE {{ ticket.id }}\n")
    footer.write_text("FOOTER-ONE\n")

    def text_at(now: datetime) -> str:
        [out] = agent_mails.notifications(
            c, _support(c), [_agent(c)], "new_ticket", DIGEST, cause="edit", now=now
        )
        return _parsed(out).get_content()

    def edit(path: Path, text: str) -> None:
        path.write_text(text)
        os.utime(path, (os.path.getmtime(path) + 5,) * 2)  # a new mtime on a coarse clock

    first = text_at(NOW)
    assert "BODY-ONE" in first and "FOOTER-ONE" in first
    edit(body, "BODY-TWO {{ ticket.id }}\n")
    edit(footer, "FOOTER-TWO\n")
    same_second = text_at(NOW + timedelta(milliseconds=500))
    assert "BODY-ONE" in same_second and "FOOTER-ONE" in same_second
    next_second = text_at(NOW + timedelta(seconds=1))
    assert "BODY-TWO" in next_second and "FOOTER-TWO" in next_second
