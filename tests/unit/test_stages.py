"""Pure stages: classify, thread, auto-response policy, decide, compose. Table-driven."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta

import pytest

from mailgate.autoresponse.policy import should_respond
from mailgate.outgoing.compose import compose, header_text, reply_subject, stable_message_id
from mailgate.parse.message import parse
from mailgate.pipeline.classify import classify
from mailgate.pipeline.decide import ccs_of
from mailgate.pipeline.digests import body_digest, dedupe_key
from mailgate.pipeline.thread import ThreadLookups, TicketFacts, choose, referenced_ids, tag_number
from tests.harness import message

OURS = frozenset({"support@example.test", "billing@example.test"})
HOST = "helpdesk.example.test"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def verdict(extra: str = "", sender: str = "customer@example.com"):
    return classify(parse(message(sender=sender, extra=extra)), OURS, HOST)


@pytest.mark.parametrize(
    ("extra", "sender", "flags"),
    [
        ("", "customer@example.com", set()),
        ("Auto-Submitted: auto-replied", "c@example.com", {"auto"}),
        ("Auto-Submitted: auto-generated", "c@example.com", {"auto"}),
        ("Auto-Submitted: no", "c@example.com", set()),
        ("Precedence: bulk", "c@example.com", {"bulk"}),
        ("Precedence: list", "c@example.com", {"bulk"}),
        ("Precedence: junk", "c@example.com", {"bulk"}),
        ("List-Id: <x.example.com>", "c@example.com", {"bulk"}),
        ("List-Unsubscribe: <mailto:u@x>", "c@example.com", {"bulk"}),
        ("Return-Path: <>", "c@example.com", {"bounce"}),
        ("", "MAILER-DAEMON@example.com", {"bounce"}),
        ("", "postmaster@example.com", {"bounce"}),
        ("X-Mailgate-Loop: helpdesk.example.test", "c@example.com", {"loop"}),
        ("X-Mailgate-Loop: other.example", "c@example.com", set()),
        ("", "support@example.test", {"loop"}),
        ("X-Autoreply: yes", "c@example.com", {"auto"}),
    ],
)
def test_classify(extra, sender, flags):
    v = verdict(extra, sender)
    got = {f for f in ("loop", "bounce", "auto", "bulk") if getattr(v, f)}
    assert got == flags
    assert v.may_autorespond == (not flags)
    assert len(v.reasons) == len(flags)  # every verdict carries its reasons


def test_classify_delivery_status_report():
    raw = (
        b"From: MAILER-DAEMON@mx.example.com\r\nTo: support@example.test\r\nSubject: fail\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b--\r\n"
    )
    v = classify(parse(raw), OURS, HOST)
    assert v.bounce and v.automatic and not v.may_autorespond


def facts(tid=1, requester="carla@corp.example", ccs=(), status="open", closed_at=None):
    return TicketFacts(tid, requester, frozenset(ccs), status, "support", closed_at)


WEEK = timedelta(days=7)


@pytest.mark.parametrize(
    ("sender", "lookups", "expect_ticket", "linked", "reopen"),
    [
        ("x@corp.example", ThreadLookups(None, ()), None, None, False),
        ("carla@corp.example", ThreadLookups(facts(), ()), 1, None, False),
        ("carla@corp.example", ThreadLookups(None, (facts(),)), 1, None, False),
        ("cc@else.example", ThreadLookups(facts(ccs=["cc@else.example"]), ()), 1, None, False),
        ("alice@example.test", ThreadLookups(facts(), ()), 1, None, False),  # an agent
        ("bob@corp.example", ThreadLookups(facts(), ()), 1, None, False),  # a colleague
        ("mallory@evil.example", ThreadLookups(facts(), ()), None, 1, False),
        ("x@gmail.com", ThreadLookups(facts(requester="y@gmail.com"), ()), None, 1, False),
        (
            "carla@corp.example",
            ThreadLookups(facts(status="closed", closed_at=NOW - timedelta(days=2)), ()),
            1,
            None,
            True,
        ),
        (
            "carla@corp.example",
            ThreadLookups(facts(status="closed", closed_at=NOW - timedelta(days=30)), ()),
            None,
            1,
            False,
        ),
        # the tag names a stranger's ticket, the references our own: references win
        (
            "carla@corp.example",
            ThreadLookups(facts(1, "z@other.example"), (facts(2),)),
            2,
            None,
            False,
        ),
    ],
)
def test_choose(sender, lookups, expect_ticket, linked, reopen):
    c = choose(sender, lookups, frozenset({"alice@example.test"}), NOW, WEEK)
    assert (c.ticket_id, c.linked_to, c.reopen) == (expect_ticket, linked, reopen), c.reason
    assert c.reason


def test_colleagues_can_be_switched_off():
    c = choose(
        "bob@corp.example", ThreadLookups(facts(), ()), frozenset(), NOW, WEEK, colleagues=False
    )
    assert c.ticket_id is None and c.linked_to == 1


@pytest.mark.parametrize(
    ("subject", "n"),
    [
        ("Re: [support #12] Printer", 12),
        ("[#7] x", 7),
        ("AW: Help [billing #123456]", 123456),
        ("no tag here", None),
        ("[support 12]", None),
        ("[support #abc]", None),
    ],
)
def test_tag_number(subject, n):
    assert tag_number(subject) == n


def test_referenced_ids_nearest_first_without_duplicates():
    assert referenced_ids(("<c>",), ("<a>", "<b>", "<c>")) == ("<c>", "<b>", "<a>")


@pytest.mark.parametrize(
    ("automatic", "last", "enabled", "reply", "send"),
    [
        ("", None, True, False, True),
        ("", None, False, False, False),
        ("Auto-Submitted: auto-replied", None, True, False, False),
        # issue 10: a person's second ticket within the period is acknowledged too (the
        # governor caps acknowledgements per address); the period guards replies only
        ("", NOW - timedelta(hours=1), True, False, True),
        ("", NOW - timedelta(hours=1), True, True, False),
        ("", NOW - timedelta(hours=25), True, True, True),
    ],
)
def test_should_respond(automatic, last, enabled, reply, send):
    d = should_respond(
        verdict=verdict(automatic),
        sender="c@example.com",
        enabled=enabled,
        period=timedelta(hours=24),
        last_sent_at=last,
        now=NOW,
        reply=reply,
    )
    assert d.send is send and d.reason


@pytest.mark.parametrize(
    "sender",
    [
        "noreply@shop.example",
        "no-reply@shop.example",
        "donotreply@bank.example",
        "MAILER-DAEMON@mx.example",
        "postmaster@mx.example",
        "bounces+123@lists.example",
        "bounce-abc@news.example",
    ],
)
def test_no_auto_response_to_no_reply_senders(sender):
    d = should_respond(
        verdict=verdict(""),
        sender=sender,
        enabled=True,
        period=timedelta(hours=24),
        last_sent_at=None,
        now=NOW,
    )
    assert not d.send and ("no-reply" in d.reason or "bounce" in d.reason), d.reason


@pytest.mark.parametrize(
    ("extra", "subject"),
    [
        ("Precedence: auto_reply", "Printer"),
        ("X-Autorespond: yes", "Printer"),
        ("X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent", "Printer"),
        ("", "Out of Office: Printer"),
        ("", "Automatic reply: Printer"),
        ("", "Abwesenheitsnotiz: Drucker"),
        ("", "Réponse automatique : Imprimante"),
        ("", "Respuesta automática: Impresora"),
    ],
)
def test_auto_replies_are_recognised_by_header_and_subject(extra, subject):
    v = classify(parse(message(extra=extra, subject=subject)), OURS, HOST)
    assert v.auto and not v.may_autorespond and v.reasons


def test_a_subject_about_an_office_is_not_an_auto_reply():
    v = classify(parse(message(subject="Our office printer is out of toner")), OURS, HOST)
    assert not v.automatic


def test_dedupe_key_ignores_trace_headers_and_line_ends_but_not_the_body():
    a = message(message_id="<m1@x>", body="Hello\nthere\n")
    b = b"Received: from relay\r\nDelivered-To: billing@example.test\r\n" + a
    c = a.replace(b"\r\n", b"\n")
    other = message(message_id="<m1@x>", body="Different text\n")
    keys = {dedupe_key(parse(x), x) for x in (a, b, c)}
    assert len(keys) == 1
    assert dedupe_key(parse(other), other) not in keys
    assert body_digest(a) == body_digest(c)


def test_ccs_exclude_our_addresses_and_the_sender():
    p = parse(
        message(
            to="support@example.test, Dan <dan@corp.example>",
            extra="Cc: support+t1.abc@example.test, eve@corp.example",
        )
    )
    assert ccs_of(p, OURS) == ("dan@corp.example", "eve@corp.example")


def test_compose_sets_headers_in_code_and_encodes_utf8():
    raw = compose(
        from_addr="support@example.test",
        from_name="Sùpport",
        to=(("Zoë", "z@example.com"),),
        subject="Grüße\r\nBcc: victim@example.org",
        body="Héllo\n" + "x" * 2000,
        message_id="<id@h>",
        date=NOW,
        hostname=HOST,
        in_reply_to="<p@x>",
        references=("<a@x>", "<p@x>"),
    )
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert m["Bcc"] is None
    assert m["Subject"] == "Grüße Bcc: victim@example.org"
    assert m["Auto-Submitted"] == "auto-replied" and m["X-Mailgate-Loop"] == HOST
    assert m["In-Reply-To"] == "<p@x>" and m["References"].split() == ["<a@x>", "<p@x>"]
    assert m.get_content().startswith("Héllo")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def test_reply_subject_and_stable_ids():
    assert reply_subject("Re: AW: [support #3] Help", "[support #3]") == "[support #3] Help"
    assert reply_subject("", "[support #3]") == "[support #3]"
    assert stable_message_id(HOST, "ack", "k") == stable_message_id(HOST, "ack", "k")
    assert stable_message_id(HOST, "ack", "k") != stable_message_id(HOST, "ack", "j")
    assert header_text("a\r\nb\x00c") == "a b c"


def test_loop_header_found_whatever_its_case_or_place():
    for name in ("X-Mailgate-Loop", "x-mailgate-loop", "X-MAILGATE-LOOP"):
        raw = (
            f"From: a@example.test\nX-Other: 1\n{name}: other.test\n{name}:  Ours.Test \n"
            "Subject: hi\n\nbody\n"
        ).encode()
        verdict = classify(parse(raw), frozenset(), "ours.test")
        assert verdict.loop and verdict.reasons == ("loop: X-Mailgate-Loop: Ours.Test is ours",)
    plain = parse(b"From: a@example.test\nSubject: hi\n\nbody\n")
    assert not classify(plain, frozenset(), "ours.test").loop
