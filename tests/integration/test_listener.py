"""The listener: 250 only after the spool write, 451 when it fails, 552 over the size limit."""

from __future__ import annotations

import shutil
import smtplib

import pytest

from tests.harness import load, message, running, tickets, wait_until, write_config


def test_spool_failure_answers_451_and_the_retry_succeeds(tmp_path):
    cfg = load(write_config(tmp_path))
    with running(cfg) as d:
        incoming = cfg.spool_dir / "incoming"
        shutil.rmtree(incoming)
        incoming.write_text("not a directory")  # every spool write now fails
        with pytest.raises(smtplib.SMTPDataError) as e:
            d.send(message(message_id="<retry-1@example.com>"))
        assert e.value.smtp_code == 451  # temporary: the sender keeps the mail and retries
        incoming.unlink()
        incoming.mkdir()
        d.send(message(message_id="<retry-1@example.com>"))
        wait_until(lambda: len(tickets(d.engine)) == 1)


def test_oversized_message_is_refused_with_552(tmp_path):
    cfg = load(write_config(tmp_path))  # harness: max_message_bytes = 2,000,000
    with running(cfg) as d, pytest.raises(smtplib.SMTPException) as e:
        d.send(message(body="x" * 2_100_000))
    assert "552" in str(e.value) or getattr(e.value, "smtp_code", 0) == 552
    assert d.daemon.spool.pending() == 0


def test_lmtp_answers_each_recipient_and_makes_one_ticket(tmp_path):
    cfg = load(write_config(tmp_path, mode="lmtp"))
    with running(cfg) as d:
        lmtp = smtplib.LMTP("127.0.0.1", d.port, timeout=10)
        try:
            lmtp.ehlo_or_helo_if_needed()
            lmtp.mail("customer@example.com")
            assert lmtp.rcpt("support@example.test")[0] == 250
            assert lmtp.rcpt("billing@example.test")[0] == 250
            assert lmtp.rcpt("nobody@example.test")[0] == 550
            code, _ = lmtp.data(message(to="support@example.test, billing@example.test"))
            assert code == 250
            assert lmtp.getreply()[0] == 250  # RFC 2033: one reply per accepted recipient
        finally:
            lmtp.close()
        wait_until(lambda: len(tickets(d.engine)) == 1)
        (t,) = tickets(d.engine)
    assert {q.queue for q in t.queues} == {"support", "billing"}


def test_sigterm_style_stop_finishes_what_was_acknowledged(tmp_path):
    cfg = load(write_config(tmp_path))
    with running(cfg) as d:
        for i in range(20):
            d.send(
                message(
                    message_id=f"<stop-{i}@example.com>",
                    subject=f"q {i}",
                    sender=f"c{i}@example.com",
                ),
                sender=f"c{i}@example.com",
            )
    # the daemon stopped right after the last 250: everything acknowledged is either
    # stored or still in the spool for the next start; a restart finishes it
    with running(cfg) as d:
        wait_until(lambda: len(tickets(d.engine)) == 20)
        assert d.daemon.spool.pending() == 0


def test_reload_keeps_the_last_good_config_and_takes_a_good_one(tmp_path, caplog):
    path = write_config(tmp_path)
    cfg = load(path)
    sales = path.parent / "queues" / "sales.toml"
    good = sales.read_text()
    with running(cfg) as d:
        sales.write_text(good.replace('addresses = ["sales@example.test"]', "addresses = 7"))
        assert d.daemon.reload() is False
        assert "sales.toml: addresses: must be a list" in caplog.text
        d.send(message(to="sales@example.test"), rcpts=["sales@example.test"])  # still served
        sales.write_text(
            good.replace(
                '["sales@example.test"]', '["sales@example.test", "vertrieb@example.test"]'
            )
        )
        assert d.daemon.reload() is True
        d.send(
            message(to="vertrieb@example.test", sender="kunde@example.de"),
            rcpts=["vertrieb@example.test"],
            sender="kunde@example.de",
        )
        wait_until(lambda: len(tickets(d.engine)) == 2)
        assert {t.queue for t in tickets(d.engine)} == {"sales"}
