"""`mailgate import mbox|maildir`: an existing mailbox through the normal path: threaded,
deduplicated, no acknowledgement unless --ack; importing it again creates nothing."""

from __future__ import annotations

import json
import mailbox
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mailgate.cli.main import main as cli_main
from mailgate.db import engine as db
from mailgate.db.models import Article, OutboxRow
from tests.harness import load, message, tickets, write_config

DAY = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
FIRST = message(
    sender="carla@example.com", subject="Printer broken", message_id="<m1@ex.com>", date=DAY
)
MAILS = [
    # the reply first: a Maildir has no order, and an mbox may be appended to out of order
    message(
        sender="carla@example.com",
        date=DAY + timedelta(hours=2),
        subject="Re: Printer broken",
        body="It still makes noise.\n",
        message_id="<m2@ex.com>",
        in_reply_to="<m1@ex.com>",
        references="<m1@ex.com>",
    ),
    FIRST,
    message(sender="bob@corp.example", subject="Invoice", message_id="<m3@ex.com>", date=DAY),
    FIRST,  # the same message twice in one mailbox (a copy, a re-sent folder)
    b"From: dan@corp.example\r\nTo: support@example.test\r\nSubject: No id\r\n\r\nhello\r\n",
]


def write_mbox(path, mails) -> None:
    box = mailbox.mbox(path)
    for raw in mails:
        box.add(raw)
    box.flush()
    box.close()


def write_maildir(path, mails) -> None:
    box = mailbox.Maildir(path)
    for raw in mails:
        box.add(raw)
    box.close()


@pytest.fixture
def cfg(tmp_path):
    return load(write_config(tmp_path))


def run_import(cfg, capsys, *argv: str) -> dict:
    capsys.readouterr()
    assert cli_main(["-c", str(cfg.path), "import", *argv, "--queue", "support", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def outbox_kinds(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(select(OutboxRow.kind)))


def test_an_mbox_is_threaded_deduplicated_and_not_acknowledged(cfg, tmp_path, capsys):
    write_mbox(tmp_path / "old.mbox", MAILS)
    first = run_import(cfg, capsys, "mbox", str(tmp_path / "old.mbox"))
    assert first["read"] == 5
    assert (first["new_tickets"], first["new_articles"], first["duplicates"]) == (3, 4, 1)
    assert first["shunted"] == 0
    engine = db.connect(cfg.database_url)
    try:
        ts = tickets(engine)
        by_title = {t.title: t for t in ts}
        assert sorted(by_title) == ["Invoice", "No id", "Printer broken"]
        printer = by_title["Printer broken"]
        assert [a.message_id for a in printer.articles] == ["<m1@ex.com>", "<m2@ex.com>"]
        assert all(t.queue == "support" for t in ts)
        assert outbox_kinds(engine) == []  # no acknowledgement without --ack
        with engine.connect() as conn:
            reasons = [v["reasons"] for v in conn.scalars(select(Article.verdict))]
        assert any("ack: imported from a mailbox (no --ack)" in r for r in reasons)

        again = run_import(cfg, capsys, "mbox", str(tmp_path / "old.mbox"))
        assert (again["new_tickets"], again["new_articles"], again["duplicates"]) == (0, 0, 5)
        # the same mail as a Maildir: already there too
        write_maildir(tmp_path / "Maildir", MAILS)
        other = run_import(cfg, capsys, "maildir", str(tmp_path / "Maildir"))
        assert (other["read"], other["new_tickets"], other["new_articles"]) == (5, 0, 0)
        assert len(tickets(engine)) == 3 and outbox_kinds(engine) == []
    finally:
        engine.dispose()


def test_ack_acknowledges_each_new_ticket_once(cfg, tmp_path, capsys):
    write_maildir(tmp_path / "Maildir", MAILS)
    out = run_import(cfg, capsys, "maildir", str(tmp_path / "Maildir"), "--ack")
    assert (out["new_tickets"], out["new_articles"]) == (3, 4)
    engine = db.connect(cfg.database_url)
    try:
        assert outbox_kinds(engine) == ["ack", "ack", "ack"]
        run_import(cfg, capsys, "maildir", str(tmp_path / "Maildir"), "--ack")
        assert outbox_kinds(engine) == ["ack", "ack", "ack"]
    finally:
        engine.dispose()


def test_a_missing_mailbox_or_queue_is_one_line(cfg, tmp_path, capsys):
    base = ["-c", str(cfg.path), "import"]
    assert cli_main([*base, "mbox", str(tmp_path / "nope"), "--queue", "support"]) == 66
    assert "no such mbox file" in capsys.readouterr().err
    assert cli_main([*base, "maildir", str(tmp_path), "--queue", "support"]) == 66
    assert "not a Maildir" in capsys.readouterr().err
    write_mbox(tmp_path / "x.mbox", MAILS[:1])
    assert cli_main([*base, "mbox", str(tmp_path / "x.mbox"), "--queue", "nosuch"]) == 64
    assert "no queue named" in capsys.readouterr().err


def test_with_a_daemon_on_the_spool_the_messages_are_left_to_it(cfg, tmp_path, capsys):
    from mailgate.spool import Spool
    from tests.harness import offline

    write_mbox(tmp_path / "old.mbox", MAILS)
    daemon_spool = Spool(cfg.spool_dir)
    daemon_spool.lock()  # what a running `mailgate run` holds
    try:
        out = run_import(cfg, capsys, "mbox", str(tmp_path / "old.mbox"))
        assert out["spooled_for_the_running_daemon"] == 5
        assert daemon_spool.pending() == 5
    finally:
        daemon_spool.unlock()
    engine, _, worker = offline(cfg)
    try:
        r = worker.drain()  # the daemon's worker, as it would run them
        assert (r.stored, r.duplicates) == (4, 1)
        assert len(tickets(engine)) == 3 and outbox_kinds(engine) == []
    finally:
        engine.dispose()
