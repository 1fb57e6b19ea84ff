"""The pure bounce stages: VERP addresses, reading reports (the corpus and the text forms of
common mailers), matching precedence, and the governor's pause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailgate.bounces.dsn import read_report
from mailgate.bounces.match import Lookups, Sent, match
from mailgate.bounces.verp import is_verp_shaped, verp_address, verp_row
from mailgate.outgoing.governor import Mail, paused

CORPUS = Path(__file__).parent.parent / "data" / "corpus" / "bounces_autoreplies"
SECRET = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_verp_names_its_row_and_cannot_be_forged():
    a = verp_address(SECRET, 42, "support@example.test")
    assert a.startswith("bounces+42.") and a.endswith("@example.test")
    assert verp_row(SECRET, a) == 42 and verp_row(SECRET, f"<{a.upper()}>") == 42
    assert verp_row(b"another secret 0123456789", a) is None
    assert verp_row(SECRET, a.replace("+42.", "+43.")) is None  # another row, same MAC
    assert is_verp_shaped(a.replace("+42.", "+43.")) and not is_verp_shaped("support@x.test")
    assert verp_row(SECRET, "support@example.test") is None


# file -> (kind, form, first recipient, action, status, a returned Message-ID found)
CORPUS_READINGS = {
    "deltachat__dsn_relayed.eml": (
        "delivered",
        "rfc3464",
        "anon_2@gmx.at",
        "relayed",
        "2.0.0",
        True,
    ),
    "deltachat__gmail_ndn.eml": (
        "bounce",
        "rfc3464",
        "assidhfaaspocwaeofi@gmail.com",
        "failed",
        "5.1.1",
        True,
    ),
    "deltachat__gmx_ndn.eml": (
        "bounce",
        "exim",
        "snaerituhaeirns@gmail.com",
        "failed",
        "5.1.1",
        True,
    ),
    "deltachat__ndn_with_attachment.eml": (
        "bounce",
        "rfc3464",
        "bob@example.org",
        "failed",
        "5.2.2",
        True,
    ),
    "deltachat__testrun_ndn.eml": (
        "bounce",
        "rfc3464",
        "hcksocnsofoejx@five.chat",
        "failed",
        "5.1.1",
        True,
    ),
    "deltachat__yahoo_ndn.eml": (
        "bounce",
        "yahoo",
        "haeclirth.sinoenrat@yahoo.com",
        "failed",
        "5.0.0",
        True,
    ),
    "flanker__bounce_broken-mime.eml": (
        "bounce",
        "text",
        "info@example.net",
        "failed",
        "5.0.0",
        False,
    ),
    "flanker__bounce_delayed-broken.eml": (
        "bounce",
        "rfc3464",
        "demo@example.com",
        "failed",
        "4.2.2",
        False,
    ),
    "flanker__bounce_gmail-no-dns.eml": (
        "bounce",
        "gmail",
        "user@example.comm",
        "failed",
        "5.0.0",
        False,
    ),
    "flanker__bounce_no-mx.eml": ("delay", "rfc3464", "user@example.com", "delayed", "4.4.4", True),
    "flanker__bounce_office365.eml": (
        "bounce",
        "rfc3464",
        "noname@example.com",
        "failed",
        "5.1.10",
        True,
    ),
    "flanker__complaints_aol.eml": ("complaint", "complaint", "", "", "", True),
    "flanker__disposition-notification.eml": ("mdn", "mdn", "", "", "", True),
    "deltachat__tlsrpt.eml": ("tlsrpt", "tlsrpt", "", "", "", False),
}


@pytest.mark.parametrize("name", sorted(CORPUS_READINGS))
def test_corpus_reports_are_read(name: str):
    kind, form, rcpt, action, status, has_id = CORPUS_READINGS[name]
    r = read_report((CORPUS / name).read_bytes())
    assert r is not None and (r.kind, r.form) == (kind, form)
    if rcpt:
        first = r.recipients[0]
        assert (first.address, first.action, first.status) == (rcpt, action, status)
    assert bool(r.returned_ids) == has_id


@pytest.mark.parametrize(
    "name", ["flanker__long-links.eml", "deltachat__ms_exchange_report_original_message.eml"]
)
def test_mail_a_person_wrote_is_no_report(name: str):
    assert read_report((CORPUS / name).read_bytes()) is None


TEXT_FORMS = [
    (
        "qmail",
        "Subject: failure notice\n\nHi. This is the qmail-send program at mx.example.net.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
        "<gone@example.net>:\n192.0.2.1 does not like recipient.\n"
        "Remote host said: 550 5.1.1 No such user\n\n"
        "--- Below this line is a copy of the message.\n\nMessage-ID: <ours@x.test>\n",
        "gone@example.net",
        "5.1.1",
        "failed",
    ),
    (
        "postfix",
        "Subject: Undelivered Mail Returned to Sender\n\nThis is the mail system at host "
        "mx.example.org.\n\n<full@example.org>: host mx said: 452 4.2.2 Mailbox full\n",
        "full@example.org",
        "4.2.2",
        "failed",
    ),
    (
        "exim",
        "Subject: Warning: message 1abc delayed 24 hours\n\nThis message was created "
        "automatically by mail delivery software.\n\nA message that you sent has not yet "
        "been delivered to one or more of its recipients after more than 24 hours.\n\n"
        "  slow@example.com\n    Delay reason: SMTP error 451 4.7.1 greylisted\n",
        "slow@example.com",
        "4.7.1",
        "delayed",
    ),
]


@pytest.mark.parametrize(("form", "text", "rcpt", "status", "action"), TEXT_FORMS)
def test_text_bounces_of_common_mailers(form, text, rcpt, status, action):
    raw = ("From: MAILER-DAEMON@mx.example\nTo: bounces+1.x@example.test\n" + text).encode()
    r = read_report(raw)
    assert r is not None and r.form == form
    first = r.recipients[0]
    assert (first.address, first.status, first.action) == (rcpt, status, action)
    assert first.hard == (status.startswith("5") and action == "failed")


def test_a_dsn_look_alike_saying_auto_submitted_no_is_still_a_report():
    raw = (
        b"From: someone@example.com\nAuto-Submitted: no\nSubject: hello\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nhi\n'
        b"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n"
        b"Final-Recipient: rfc822; c@example.com\nAction: failed\nStatus: 5.1.1\n--b--\n"
    )
    r = read_report(raw)
    assert r is not None and r.kind == "bounce" and r.recipients[0].address == "c@example.com"


def _sent(row: int, ticket: int | None) -> Sent:
    return Sent(row, ticket, "ack", f"<m{row}@x>", ("c@example.com",), NOW)


@pytest.mark.parametrize(
    ("found", "ticket", "method"),
    [
        (
            Lookups(verp=_sent(1, 10), by_message_id=_sent(2, 20), by_recipient=_sent(3, 30)),
            10,
            "verp",
        ),
        (Lookups(by_message_id=_sent(2, 20), by_recipient=_sent(3, 30)), 20, "message-id"),
        (Lookups(ticket_by_message_id=21, by_recipient=_sent(3, 30)), 21, "message-id"),
        (Lookups(by_recipient=_sent(3, 30)), 30, "recipient"),
        (Lookups(verp=_sent(1, None), by_recipient=_sent(3, 30)), 30, "recipient"),
        (Lookups(verp_forged="bounces+1.000000000000@x"), None, ""),
        (Lookups(), None, ""),
    ],
)
def test_match_tries_verp_then_message_id_then_recipient(found, ticket, method):
    m = match(found)
    assert (m.ticket_id, m.method) == (ticket, method)
    if found.verp_forged:
        assert "wrong MAC" in m.reason


def test_the_governor_holds_only_automatic_mail_while_paused():
    until = NOW + timedelta(hours=1)
    assert paused(Mail("ack", "c@example.com", 1), until, NOW).hold
    assert paused(Mail("escalated", "c@example.com", 1), until, NOW).cap == "bounce_pause"
    assert not paused(Mail("answer", "c@example.com", 1), until, NOW).hold  # a person's answer
    assert not paused(Mail("ack", "c@example.com", 1), NOW - timedelta(seconds=1), NOW).hold
    assert not paused(Mail("ack", "c@example.com", 1), None, NOW).hold
