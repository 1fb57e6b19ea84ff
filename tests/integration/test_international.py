"""International mail (RFC 6531/6532) end to end: listener, pipe, store, ack via SMTPUTF8."""

from __future__ import annotations

import smtplib
import subprocess
import sys

from mailgate.spool import Envelope
from tests import harness as h
from tests.harness import load, message, running, tickets, wait_until, write_config
from tests.servers import SmtpSink

JOSE = "josé@example.com"


def send_utf8(port: int, raw: bytes, sender: str = JOSE) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo()
        assert s.has_extn("smtputf8"), "the listener must advertise SMTPUTF8"
        s.sendmail(sender, ["support@example.test"], raw, mail_options=["SMTPUTF8"])


def test_utf8_sender_becomes_a_ticket_and_gets_its_ack_via_smtputf8(tmp_path, smtp_sink):
    cfg = load(write_config(tmp_path, relay_port=smtp_sink.port))
    with running(cfg) as d:
        send_utf8(d.port, message(sender=JOSE, name="José Núñez", subject="Grüße"))
        got = wait_until(lambda: [m for m in smtp_sink.messages if m.rcpt_tos == [JOSE]])
        ts = tickets(d.engine)
        wait_until(lambda: [r for r in h.outbox(d.engine) if r.kind == "ack"][0].status == "sent")
    assert len(ts) == 1 and ts[0].requester_addr == JOSE
    assert ts[0].articles[0].from_name == "José Núñez"
    ack = got[0]
    assert ack.smtp_utf8 and "SMTPUTF8" in [o.upper() for o in ack.mail_options]
    assert b"<" + JOSE.encode() + b">\r\n" in ack.data  # RFC 6532: raw UTF-8 in the header
    assert ack.message["Subject"].endswith("Grüße")


def test_without_smtputf8_at_the_relay_the_ack_is_held_and_the_ticket_says_why(tmp_path):
    sink = SmtpSink(smtputf8=False)
    try:
        cfg = load(write_config(tmp_path, relay_port=sink.port))
        with running(cfg) as d:
            d.send(message(sender=JOSE, name="José"), sender="bounce@example.com")
            row = wait_until(
                lambda: [r for r in h.outbox(d.engine) if r.kind == "ack" and r.status == "held"]
            )[0]
            ts = tickets(d.engine)
        # held, not failed: `mailgate outbox release` sends it once the relay offers SMTPUTF8
        assert "SMTPUTF8" in row.last_error and JOSE in row.last_error
        notes = [a.body_text for a in ts[0].articles if "SMTPUTF8" in (a.body_text or "")]
        assert notes, "the reason must be noted on the ticket"
        assert not [m for m in sink.messages if JOSE in m.rcpt_tos]
    finally:
        sink.stop()


def test_pipe_takes_a_utf8_message(tmp_path):
    cfg_path = write_config(tmp_path)
    raw = message(sender=JOSE, name="José")
    proc = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(cfg_path), "ingest"]
        + ["--queue", "support", "--sender", JOSE, "--recipient", "support@example.test"],
        input=raw,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    engine, _spool, worker = h.offline(load(cfg_path))
    assert worker.drain().stored == 1
    assert tickets(engine)[0].requester_addr == JOSE


def test_imap_takes_a_utf8_message(tmp_path, dovecot_factory):
    from tests.integration.test_imap import PASSWORD, _imap_toml

    server = dovecot_factory()
    path = write_config(
        tmp_path, queue_extra={"support": _imap_toml(server, "support@example.test")}
    )
    (path.parent / "password").write_text(PASSWORD)
    server.append("support@example.test", message(sender=JOSE, name="José", subject="Grüße"))
    with running(load(path)) as d:
        ts = wait_until(lambda: tickets(d.engine), 30, "the IMAP message as a ticket")
    assert (ts[0].requester_addr, ts[0].title) == (JOSE, "Grüße")


def test_a_utf8_senders_follow_up_threads_into_their_ticket(tmp_path):
    engine, spool, worker = h.offline(load(write_config(tmp_path)))
    spool.put(message(sender=JOSE, subject="Drucker"), Envelope(source="pipe", queue="support"))
    worker.drain()
    (t,) = tickets(engine)
    reply = message(sender="JOSÉ@example.com", subject=f"Re: [support #{t.id}] Drucker")
    spool.put(reply, Envelope(source="pipe", queue="support"))
    assert worker.drain().stored == 1
    (t,) = tickets(engine)
    assert [a.from_addr for a in t.articles] == [JOSE, JOSE]
