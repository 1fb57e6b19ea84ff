"""Mail no person wrote, through a real daemon: every bounce and report of the corpus,
rebuilt as a reply to our own acknowledgement (its real VERP envelope sender, its real
Message-ID, its real recipient), lands on the right ticket by the expected method, opens
no ticket and sends nothing; a hard bounce pauses the address and holds the next
automatic mail to it."""

from __future__ import annotations

import json
import re
import smtplib
from pathlib import Path

import pytest
from sqlalchemy import select

from mailgate.bounces.dsn import read_report
from mailgate.bounces.verp import verp_row
from mailgate.cli.main import main as cli_main
from mailgate.db.models import Article
from mailgate.store.addresses import list_states
from mailgate.store.junk import list_junk
from tests.harness import load, message, outbox, running, tickets, wait_until, write_config
from tests.servers import SmtpSink

CORPUS = Path(__file__).parent.parent / "data" / "corpus" / "bounces_autoreplies"
CUSTOMER = "carla@customers.example"
# mail a person wrote, kept in the corpus folder by the heuristic that collected it
NOT_REPORTS = {
    "deltachat__ms_exchange_report_original_message.eml",  # the message an MDN answers
    "flanker__long-links.eml",  # a person writing from a postmaster@ address
}
REPORTS = sorted(p.name for p in CORPUS.glob("*.eml") if p.name not in NOT_REPORTS)
# how each report is matched when it comes back to the queue address without VERP (an
# IMAP mailbox whose MTA keeps no Delivered-To): by the Message-ID it returns, else by its
# recipient and time; "" = quarantined (it names neither)
WITHOUT_VERP = {
    "deltachat__dsn_relayed.eml": "message-id",
    "deltachat__gmail_ndn.eml": "message-id",
    "deltachat__gmail_ndn_group.eml": "message-id",
    "deltachat__gmx_ndn.eml": "message-id",
    "deltachat__ms_exchange_report_disposition_notification.eml": "message-id",  # In-Reply-To
    "deltachat__ndn_with_attachment.eml": "message-id",
    "deltachat__posteo_ndn.eml": "message-id",
    "deltachat__testrun_ndn.eml": "message-id",
    "deltachat__testrun_ndn_2.eml": "message-id",
    "deltachat__tiscali_ndn.eml": "message-id",
    "deltachat__tlsrpt.eml": "",  # a TLS report is about a domain, never a ticket
    "deltachat__yahoo_ndn.eml": "message-id",
    "flanker__bounce_broken-mime.eml": "recipient",
    "flanker__bounce_delayed-broken.eml": "recipient",
    "flanker__bounce_delayed.eml": "recipient",
    "flanker__bounce_gmail-invalid-address.eml": "message-id",
    "flanker__bounce_gmail-no-dns.eml": "recipient",
    "flanker__bounce_mailbox-full.eml": "message-id",
    "flanker__bounce_no-mx.eml": "message-id",
    "flanker__bounce_office365.eml": "message-id",
    "flanker__bounce_zed.eml": "message-id",
    "flanker__complaints_aol.eml": "message-id",
    "flanker__complaints_yahoo.eml": "message-id",
    "flanker__disposition-notification.eml": "message-id",
}
_TOP_MID = re.compile(rb"^message-id:[^\n]*\n", re.IGNORECASE | re.MULTILINE)
_IDS = re.compile(rb"^(?:in-reply-to|references):\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)


def rebuild(name: str, variant: str, *, to: str, message_id: str | None) -> bytes:
    """The corpus file as a report about our mail: its failed recipient (and the returned
    To) made our customer, its returned Message-IDs ours (when `message_id`), its own
    Message-ID new (each variant is a message of its own)."""
    raw = (CORPUS / name).read_bytes().replace(b"\r\n", b"\n")
    report = read_report(raw)
    assert report is not None, name
    for addr in {*(r.address for r in report.recipients), *report.returned_to}:
        raw = re.sub(re.escape(addr.encode()), CUSTOMER.encode(), raw, flags=re.IGNORECASE)
    if message_id:
        for old in {*report.returned_ids, *(m.decode() for m in _IDS.findall(raw))}:
            raw = raw.replace(old.encode(), message_id.encode())
    head, sep, body = raw.partition(b"\n\n")
    head = _TOP_MID.sub(b"", head + b"\n").rstrip(b"\n")
    mid = f"<{variant}.{name}@reports.example>".encode()
    head = b"Message-ID: " + mid + b"\nX-Test-To: " + to.encode() + b"\n" + head
    return head + sep + body


# reports that name no recipient: found by VERP or Message-ID only
NAME_NO_RECIPIENT = {
    "deltachat__ms_exchange_report_disposition_notification.eml",
    "deltachat__tlsrpt.eml",
    "flanker__disposition-notification.eml",
}


def _variant(mid: str) -> tuple[str, str]:
    m = re.fullmatch(r"<(\w+)\.(.+)@reports\.example>", mid)
    assert m, mid
    return m.group(1), m.group(2)


def reports_on(engine, ticket_id: int) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Article.message_id, Article.verdict, Article.kind, Article.body_text).where(
                Article.ticket_id == ticket_id, Article.kind == "system"
            )
        ).all()
    return [{"mid": r.message_id, **r.verdict.get("report", {})} for r in rows if r.verdict]


@pytest.fixture
def cfg(tmp_path, smtp_sink: SmtpSink):
    return load(write_config(tmp_path, relay_port=smtp_sink.port))


def _first_ack(d, smtp_sink: SmtpSink):
    d.send(message(sender=CUSTOMER, subject="My printer"), sender=CUSTOMER)
    (ack,) = smtp_sink.wait_for(1, timeout=15)
    (t,) = tickets(d.engine)
    return t, ack


def test_every_corpus_report_lands_on_its_ticket_by_the_expected_method(cfg, smtp_sink):
    with running(cfg) as d:
        t, ack = _first_ack(d, smtp_sink)
        verp = ack.mail_from
        (row,) = outbox(d.engine)
        assert verp_row(cfg.secret, verp) == row.id and verp.startswith("bounces+")
        ack_mid = ack.message["Message-ID"]
        sent = 0
        for name in REPORTS:
            # 1. to the VERP address, as the MTA returns it
            d.send(rebuild(name, "verp", to=verp, message_id=None), rcpts=[verp], sender="")
            # 2. to the queue address (an IMAP setup), with our Message-ID in it
            d.send(rebuild(name, "mid", to="support", message_id=ack_mid), sender="")
            # 3. to the queue address, naming only the recipient our mail went to
            d.send(rebuild(name, "rcpt", to="support", message_id=None), sender="")
            sent += 3
        wait_until(
            lambda: len(reports_on(d.engine, t.id)) + len(_junk(d.engine)) >= sent,
            60,
            "every report stored",
        )
        got = {_variant(r["mid"]): r["method"] for r in reports_on(d.engine, t.id)}
        junk = {j.message_id for j in _junk(d.engine)}
        assert len(tickets(d.engine)) == 1  # not one new ticket
        assert [r.kind for r in outbox(d.engine)] == ["ack"]  # not one mail in response
    assert len(smtp_sink.messages) == 1
    for name in REPORTS:
        expect_verp = "" if name == "deltachat__tlsrpt.eml" else "verp"
        assert got.get(("verp", name), "") == expect_verp, (name, junk)
        assert got.get(("mid", name), "") == WITHOUT_VERP[name], (name, junk)
        expect_rcpt = "" if name in NAME_NO_RECIPIENT else "recipient"
        assert got.get(("rcpt", name), "") == expect_rcpt, (name, junk)
    assert "<verp.deltachat__tlsrpt.eml@reports.example>" in junk


def _junk(engine) -> list:
    with engine.connect() as conn:
        return list_junk(conn)


def test_a_bounced_acknowledgement_pauses_the_address_and_holds_the_next_ack(
    cfg, smtp_sink, capsys
):
    config = str(cfg.path)
    with running(cfg) as d:
        t, ack = _first_ack(d, smtp_sink)
        bounce = rebuild("deltachat__posteo_ndn.eml", "verp", to=ack.mail_from, message_id=None)
        d.send(bounce, rcpts=[ack.mail_from], sender="")
        wait_until(lambda: _states(d.engine), 15, "the address state")
        (state,) = _states(d.engine)
        assert state.address == CUSTOMER and state.hard and state.status == "failing"
        assert state.last_status == "5.0.0" and state.last_ticket_id == t.id
        assert (state.paused_until - state.last_report_at).days == 30  # [bounces] default
        # the customer writes again (a person: a new ticket), but the ack is held
        d.send(message(sender=CUSTOMER, subject="Another problem"), sender=CUSTOMER)
        wait_until(lambda: len(outbox(d.engine)) == 2, 15, "the second ack")
        held = outbox(d.engine)[1]
        assert held.kind == "ack" and held.status == "held"
        assert "bounced; automatic mail to it paused until" in held.last_error
        assert len(tickets(d.engine)) == 2
        (note,) = reports_on(d.engine, t.id)
        assert note["method"] == "verp" and note["kind"] == "bounce"
        assert cli_main(["--config", config, "addresses", "list"]) == 0
        assert CUSTOMER in capsys.readouterr().out
        assert cli_main(["--config", config, "addresses", "clear", CUSTOMER]) == 0
        assert not _states(d.engine)
        assert cli_main(["--config", config, "addresses", "clear", CUSTOMER]) == 1
        # cleared: the next automatic mail goes out again
        d.send(message(sender=CUSTOMER, subject="Third problem"), sender=CUSTOMER)
        wait_until(lambda: len(smtp_sink.messages) == 2, 15, "the third ack sent")
    assert len(smtp_sink.messages) == 2  # the first and the third ack; the second held


def test_a_delay_only_notes_and_a_forged_verp_address_is_refused(cfg, smtp_sink):
    with running(cfg) as d:
        t, ack = _first_ack(d, smtp_sink)
        delay = rebuild("flanker__bounce_no-mx.eml", "verp", to=ack.mail_from, message_id=None)
        d.send(delay, rcpts=[ack.mail_from], sender="")
        wait_until(lambda: reports_on(d.engine, t.id), 15, "the delay noted")
        d.send(delay, rcpts=[ack.mail_from], sender="")  # the MTA delivers it again
        wait_until(lambda: d.daemon.spool.pending() == 0, 15, "the spool drained")
        wait_until(lambda: not list((cfg.spool_dir / "claimed").glob("*.eml")), 15, "claims")
        assert len(reports_on(d.engine, t.id)) == 1  # one article, counted once
        with d.engine.connect() as conn:
            (state,) = list_states(conn, failing_only=False)
            assert not list_states(conn)  # noted, not failing
        assert state.delays == 1 and state.bounces == 0 and state.paused_until is None
        forged = ack.mail_from.replace(".", ".0", 1)  # a MAC that does not match
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            d.send(delay, rcpts=[forged], sender="")


def _states(engine) -> list:
    with engine.connect() as conn:
        return list_states(conn)


def test_spam_is_quarantined_then_released_by_command(cfg, smtp_sink, capsys):
    config = str(cfg.path)
    with running(cfg) as d:
        t, _ack = _first_ack(d, smtp_sink)
        spam = message(sender="pills@spam.example", subject="Cheap pills", extra="X-Spam-Flag: YES")
        d.send(spam, sender="pills@spam.example")
        # a follow-up on the ticket that the filter calls spam is not attached either
        follow = message(
            sender=CUSTOMER,
            subject=f"Re: [support #{t.id}] My printer",
            extra="X-Spamd-Result: default: True [16.20 / 15.00]",
        )
        d.send(follow, sender=CUSTOMER)
        wait_until(lambda: len(_junk(d.engine)) == 2, 15, "both quarantined")
        assert len(tickets(d.engine)) == 1 and len(tickets(d.engine)[0].articles) == 1
        assert [r.kind for r in outbox(d.engine)] == ["ack"]
        junk = {j.from_addr: j for j in _junk(d.engine)}
        pills = junk["pills@spam.example"]
        assert pills.category == "spam" and pills.reason == "spam: X-Spam-Flag: YES"
        assert cli_main(["--config", config, "junk", "list"]) == 0
        out = capsys.readouterr().out
        assert "pills@spam.example" in out and "2 message(s)" in out
        assert cli_main(["--config", config, "junk", "list", "--json"]) == 0
        listed = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
        assert listed[pills.id]["category"] == "spam"
        assert listed[pills.id]["reason"] == "spam: X-Spam-Flag: YES"
        assert cli_main(["--config", config, "junk", "show", str(pills.id)]) == 0
        assert "Cheap pills" in capsys.readouterr().out
        assert cli_main(["--config", config, "junk", "release", str(pills.id)]) == 0
        # the normal path: a ticket, and its acknowledgement
        wait_until(lambda: len(tickets(d.engine)) == 2, 15, "the released mail's ticket")
        wait_until(lambda: len(smtp_sink.messages) == 2, 15, "its acknowledgement")
        assert tickets(d.engine)[1].requester_addr == "pills@spam.example"
        assert len(_junk(d.engine)) == 1  # released mail leaves the list
        assert cli_main(["--config", config, "junk", "show", "999"]) == 1


def test_the_corpus_mail_a_person_wrote(cfg, smtp_sink):
    """The two corpus files that are no reports: the message a read receipt answers is a
    customer's mail (a ticket); a person writing from postmaster@ is quarantined by its
    sender, with the reason, never a ticket."""
    with running(cfg) as d:
        for name in sorted(NOT_REPORTS):
            d.send((CORPUS / name).read_bytes(), sender="")
        wait_until(lambda: tickets(d.engine) and _junk(d.engine), 15, "both stored")
        (t,) = tickets(d.engine)
        (j,) = _junk(d.engine)
    assert t.title == "Test message" and t.requester_addr == "alice@example.org"
    assert j.category == "bounce" and "mailer daemon" in j.reason
    assert j.subject == "Please enjoy this mega long link"


@pytest.fixture
def auth_cfg(tmp_path, smtp_sink: SmtpSink):
    path = write_config(
        tmp_path,
        relay_port=smtp_sink.port,
        main_extra='\n[authentication]\ntrusted_authserv_ids = ["mx.example.test"]\n',
    )
    support = path.parent / "queues" / "support.toml"
    support.write_text('ack_unauthenticated = "never"\n' + support.read_text())
    return load(path)


TRUSTED_PASS = "Authentication-Results: mx.example.test; dmarc=pass header.from=customers.example"
SPOOFED_PASS = "Authentication-Results: mx.evil.example; dmarc=pass header.from=customers.example"


def test_authentication_results_only_from_the_trusted_server(auth_cfg, smtp_sink, capsys):
    cases = [  # (sender, extra headers, subject)
        ("plain@customers.example", "", "no header"),
        ("spoofed@customers.example", SPOOFED_PASS, "spoofed pass"),
        (
            "spoofed-reject@customers.example",
            "Authentication-Results: mx.evil.example; dmarc=fail (p=reject) header.from=x",
            "spoofed reject",
        ),
        ("real@customers.example", TRUSTED_PASS, "trusted pass"),
        (
            "rejected@customers.example",
            "Authentication-Results: mx.example.test; dmarc=fail (p=reject dis=none) "
            "header.from=customers.example",
            "trusted reject",
        ),
    ]
    with running(auth_cfg) as d:
        for sender, extra, subject in cases:
            d.send(message(sender=sender, subject=subject, extra=extra), sender=sender)
        wait_until(lambda: len(tickets(d.engine)) == 4 and _junk(d.engine), 15, "all stored")
        ts = {t.title: t for t in tickets(d.engine)}
        (rejected,) = _junk(d.engine)
        acks = [r for r in outbox(d.engine) if r.kind == "ack"]
        assert (
            cli_main(
                ["--config", str(auth_cfg.path), "tickets", "show", str(ts["spoofed pass"].id)]
            )
            == 0
        )
        shown = capsys.readouterr().out
    # ack_unauthenticated = "never": only the sender the trusted server authenticated
    assert [r.rcpt_tos for r in acks] == [["real@customers.example"]]
    # the spoofed headers changed nothing: like the message without any header
    for title in ("spoofed pass", "spoofed reject"):
        assert ts[title].status == ts["no header"].status == "new"
        assert ts[title].articles[0].verdict["auth"]["authenticated"] is False
    assert ts["trusted pass"].articles[0].verdict["auth"] == {
        "spf": "none",
        "dkim": "none",
        "dmarc": "pass",
        "by": "mx.example.test",
        "authenticated": True,
    }
    assert "no header" in ts and "auth" not in ts["no header"].articles[0].verdict
    assert rejected.category == "dmarc" and rejected.from_addr == "rejected@customers.example"
    assert "sender authentication: spf=none dkim=none dmarc=none" in shown
    assert "ignored from mx.evil.example" in shown


def test_the_agents_see_a_bounce_in_their_next_mail_about_the_ticket(tmp_path, smtp_sink):
    notify = {"support": "[agent_mail]\nnotify = true\n"}
    cfg = load(write_config(tmp_path, relay_port=smtp_sink.port, queue_extra=notify))
    with running(cfg) as d:
        d.send(message(sender=CUSTOMER, subject="My printer"), sender=CUSTOMER)
        got = smtp_sink.wait_for(2, timeout=15)  # the ack and alice's notification
        (ack,) = [m for m in got if m.rcpt_tos == [CUSTOMER]]
        (t,) = tickets(d.engine)
        bounce = rebuild("deltachat__gmail_ndn.eml", "verp", to=ack.mail_from, message_id=None)
        d.send(bounce, rcpts=[ack.mail_from], sender="")
        wait_until(lambda: reports_on(d.engine, t.id), 15, "the bounce stored")
        assert len(outbox(d.engine)) == 2  # no mail of its own
        reply = message(sender=CUSTOMER, subject=f"Re: [support #{t.id}] My printer")
        d.send(reply, sender=CUSTOMER)
        (note,) = smtp_sink.wait_for(3, timeout=15)[2:]
    assert note.rcpt_tos == ["alice@example.test"]
    body = note.message.get_body(("plain",)).get_content()
    assert "| system | mailgate" in body and "Delivery report (bounce" in body
    assert f"{CUSTOMER}: failed 5.1.1" in body
