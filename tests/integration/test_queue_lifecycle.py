"""Queue lifecycle: a queue file removed under open tickets is refused at start, reload
and check-config until `mailgate queues retire` moved or closed them; the last queue
cannot be retired."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.app import Daemon
from mailgate.cli.main import main as cli_main
from mailgate.db.models import AuditEvent
from mailgate.spool import Envelope
from mailgate.startup import StartupError, open_stores
from mailgate.store.tickets import update_ticket
from tests.harness import load, message, offline, tickets, write_config

AGENTS = """
[[agents]]
name = "alice"
address = "alice@example.test"
queues = ["support", "sales"]

[[agents]]
name = "bob"
address = "bob@example.test"
queues = ["sales", "billing"]
"""


def _desk(tmp_path: Path):
    """Three sales tickets (one closed, one alice's, one bob's) and one support ticket that
    sales can see too; then sales.toml is removed."""
    path = write_config(tmp_path, agents_toml=AGENTS)
    cfg = load(path)
    engine, spool, worker = offline(cfg)
    sales = Envelope(source="smtp", rcpt_tos=("sales@example.test",))
    for i in range(3):
        spool.put(message(subject=f"offer {i}"), sales)
    both = Envelope(source="smtp", rcpt_tos=("support@example.test", "sales@example.test"))
    spool.put(message(subject="for both"), both)
    assert worker.drain().stored == 4
    with engine.begin() as conn:
        update_ticket(conn, 1, {"status": "closed"})
        update_ticket(conn, 2, {"assignee": "alice", "status": "open"})
        update_ticket(conn, 3, {"assignee": "bob", "status": "open"})
    engine.dispose()
    (path.parent / "queues" / "sales.toml").unlink()
    agents = path.parent / "agents.toml"
    agents.write_text(agents.read_text().replace('"sales", ', "").replace(', "sales"', ""))
    return path


def _refusal(path: Path) -> str:
    queues = path.parent / "queues"
    return (
        f"{queues}: queue 'sales' has no file any more but 2 open ticket(s): run "
        "`mailgate queues retire sales --move-to OTHER` (or `--close`) first, or put its file back"
    )


def _cli(path: Path, *argv: str) -> int:
    return cli_main(["--config", str(path), *argv])


def test_a_removed_queue_with_open_tickets_is_refused_everywhere(tmp_path, capsys, caplog):
    path = _desk(tmp_path)
    cfg = load(path)  # the files themselves are fine
    with pytest.raises(StartupError) as e:
        open_stores(cfg)
    assert (str(e.value), e.value.exit_code) == (f"queues: {_refusal(path)}", os.EX_CONFIG)
    assert _cli(path, "check-config") == 1
    assert f"error: {_refusal(path)}" in capsys.readouterr().out
    assert _cli(path, "run") == os.EX_CONFIG
    assert _refusal(path) in capsys.readouterr().err
    assert _cli(path, "queues", "list") == 0
    listed = capsys.readouterr().out.splitlines()
    [sales] = [ln for ln in listed if ln.startswith("sales ")]
    assert "2 open  REMOVED: mailgate queues retire sales" in sales
    [support] = [ln for ln in listed if ln.startswith("support ")]
    assert "1 open  support@example.test" in support


def test_a_reload_that_removes_a_queue_with_open_tickets_keeps_the_old_config(tmp_path, caplog):
    path = _desk(tmp_path)
    sales = path.parent / "queues" / "sales.toml"
    sales.write_text('name = "sales"\naddresses = ["sales@example.test"]\n')
    daemon = Daemon(load(path))  # sales is back: the daemon runs
    daemon.engine, daemon.spool = open_stores(daemon.config)
    try:
        sales.unlink()
        assert daemon.reload() is False
        assert _refusal(path) in caplog.text
        assert daemon.config.queue("sales") is not None
    finally:
        daemon.spool.unlock()
        daemon.engine.dispose()


def _audit(path: Path) -> list[tuple[int, str, dict]]:
    engine = offline(load(path))[0]
    with Session(engine) as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.action == "queue-retired"))
        return [(e.ticket_id, e.actor, e.detail) for e in rows]


def test_retire_moves_every_ticket_and_keeps_the_assignees_of_the_new_queue(tmp_path, capsys):
    path = _desk(tmp_path)
    assert _cli(path, "queues", "retire", "sales", "--move-to", "support") == 0
    out = capsys.readouterr().out
    assert out == (
        "queue sales retired: 3 ticket(s) moved to support; "
        "1 ticket(s) of other queues no longer shown in it\n"
    )
    moved = tickets(offline(load(path))[0])
    assert [(t.queue, t.status, t.assignee) for t in moved] == [
        ("support", "closed", None),
        ("support", "open", "alice"),  # alice serves support: kept
        ("support", "open", None),  # bob does not: back in the queue
        ("support", "new", None),
    ]
    assert all({q.queue for q in t.queues} == {"support"} for t in moved)
    audit = _audit(path)
    assert [(tid, detail) for tid, _, detail in audit] == [
        (i, {"queue": "sales", "moved_to": "support"}) for i in (1, 2, 3)
    ]
    assert all(actor for _, actor, _ in audit)
    assert _cli(path, "check-config") == 0
    open_stores(load(path))[1].unlock()  # starts now


def test_retire_close_closes_the_open_tickets(tmp_path, capsys):
    path = _desk(tmp_path)
    assert _cli(path, "queues", "retire", "sales", "--close") == 0
    assert capsys.readouterr().out.startswith("queue sales retired: 2 open ticket(s) closed; 1 ")
    after = tickets(offline(load(path))[0])
    assert [(t.queue, t.status) for t in after] == [
        ("sales", "closed"),
        ("sales", "closed"),
        ("sales", "closed"),
        ("support", "new"),
    ]
    assert {q.queue for q in after[3].queues} == {"support"}
    assert [(tid, d) for tid, _, d in _audit(path)] == [
        (2, {"queue": "sales", "closed": True}),
        (3, {"queue": "sales", "closed": True}),
    ]
    assert _cli(path, "check-config") == 0


def test_the_last_queue_cannot_be_retired_and_the_target_must_exist(tmp_path, capsys):
    path = _desk(tmp_path)
    assert _cli(path, "queues", "retire", "sales", "--move-to", "nowhere") == 2
    assert "--move-to nowhere: not a queue" in capsys.readouterr().out
    assert _cli(path, "queues", "retire", "typo", "--close") == 1
    assert "nothing to retire" in capsys.readouterr().out
    (path.parent / "queues" / "billing.toml").unlink()
    alice = AGENTS.split("[[agents]]")[1].replace(', "sales"', "")
    (path.parent / "agents.toml").write_text(f"[[agents]]{alice}")
    assert _cli(path, "queues", "retire", "support", "--close") == 1
    assert "queue 'support' is the last queue: it cannot be retired" in capsys.readouterr().out
    assert [t.status for t in tickets(offline(load(path))[0])][-1] == "new"  # untouched
