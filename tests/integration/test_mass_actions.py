"""Mass actions on a search result (tests/seeded.py): each does what it says to exactly the
matching tickets, audited with who ran it; a dry run changes nothing; delete needs --yes
and keeps the blobs another ticket still uses."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, text

from mailgate.cli.main import main as cli_main
from mailgate.db import engine as db
from mailgate.db.models import Article, AuditEvent, Blob, Ticket, TicketQueue, TicketTag
from tests.seeded import SHARED_SHA, seed, seeded_config


@pytest.fixture
def seeded(tmp_path):
    cfg = seeded_config(tmp_path)
    engine = db.connect(cfg.database_url)
    seed(engine)
    yield cfg, engine
    engine.dispose()


def run(cfg, capsys, *argv: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = cli_main(["-c", str(cfg.path), "tickets", "search", *argv, "--json"])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else {})


def snapshot(engine) -> dict:
    """Everything a mass action may touch, to compare before and after."""
    with engine.connect() as conn:
        return {
            name: sorted(tuple(r) for r in conn.execute(text(f"SELECT * FROM {name}")))
            for name in (
                "tickets",
                "ticket_queues",
                "ticket_tags",
                "articles",
                "attachments",
                "blobs",
                "audit_events",
                "ticket_sla",
            )
        }


def tickets_by_id(engine) -> dict[int, object]:
    with engine.connect() as conn:
        return {r.id: r for r in conn.execute(select(Ticket.__table__))}


def audits(engine, action: str) -> list:
    with engine.connect() as conn:
        t = AuditEvent.__table__
        return list(conn.execute(select(t).where(t.c.action == action).order_by(t.c.id)))


ACTIONS = [
    ("--close",),
    ("--assign", "alice"),
    ("--move", "sales"),
    ("--set-priority", "99"),
    ("--add-tag", "vip", "--remove-tag", "dns"),
    ("--delete",),
]


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a[0])
def test_a_dry_run_prints_the_changes_and_changes_nothing(seeded, capsys, action):
    cfg, engine = seeded
    before = snapshot(engine)
    code, out = run(cfg, capsys, "--queue", "support", *action, "--dry-run")
    assert code == 0 and out["dry_run"] is True and out["matched"] == 4
    assert out["changes"] and out["done"] == {}
    assert snapshot(engine) == before


def test_close_closes_the_matching_open_tickets_and_audits_who(seeded, capsys):
    cfg, engine = seeded
    code, out = run(cfg, capsys, "--requester", "@corp.example", "--close", "--actor", "lead")
    assert code == 0 and out["matched"] == 3
    # 3 is already closed: nothing to change there; 6 (resolved) and 2 (open) close
    assert [c["id"] for c in out["changes"]] == [2, 6]
    assert out["changes"][0]["changes"] == {"status": ["open", "closed"]}
    t = tickets_by_id(engine)
    assert (t[2].status, t[6].status, t[1].status) == ("closed", "closed", "new")
    assert t[2].closed_at is not None
    rows = audits(engine, "mass-close")
    assert [(r.ticket_id, r.actor) for r in rows] == [(2, "lead"), (6, "lead")]


def test_assign_opens_a_new_ticket_and_move_unassigns(seeded, capsys):
    cfg, engine = seeded
    assert run(cfg, capsys, "--unassigned", "--queue", "support", "--assign", "alice")[0] == 0
    t = tickets_by_id(engine)
    assert (t[1].assignee, t[1].status) == ("alice", "open")  # was new
    assert (t[5].assignee, t[5].status) == ("alice", "open")
    assert t[6].assignee is None  # billing only
    code, out = run(cfg, capsys, "--assignee", "alice", "--status", "on-hold", "--move", "sales")
    assert code == 0 and [c["id"] for c in out["changes"]] == [4]
    t = tickets_by_id(engine)
    assert (t[4].queue, t[4].assignee) == ("sales", None)
    with engine.connect() as conn:
        tq = TicketQueue.__table__.c
        assert set(conn.scalars(select(tq.queue).where(tq.ticket_id == 4))) == {"support", "sales"}


def test_priority_and_tags_change_only_what_differs(seeded, capsys):
    cfg, engine = seeded
    code, out = run(cfg, capsys, "--priority-min", "80", "--set-priority", "90")
    assert code == 0 and [c["id"] for c in out["changes"]] == [2]  # 5 is at 90 already
    assert tickets_by_id(engine)[2].priority == 90
    code, out = run(cfg, capsys, "--assignee", "alice", "--add-tag", "vip", "--remove-tag", "dns")
    assert code == 0
    assert {c["id"]: c["changes"]["tags"] for c in out["changes"]} == {
        2: {"add": ["vip"], "remove": []},
        4: {"add": ["vip"], "remove": ["dns"]},
    }
    with engine.connect() as conn:
        tt = TicketTag.__table__.c
        tags = sorted(conn.execute(select(tt.ticket_id, tt.tag)).all())
    assert tags == [(2, "billing"), (2, "urgent"), (2, "vip"), (4, "vip")]
    assert len(audits(engine, "mass-tag")) == 2


def test_delete_needs_yes_and_a_filter(seeded, capsys):
    cfg, engine = seeded
    before = snapshot(engine)
    assert run(cfg, capsys, "1", "--delete")[0] == 2
    assert run(cfg, capsys, "--delete", "--yes")[0] == 2  # no filter: not every ticket
    assert run(cfg, capsys, "--close")[0] == 2
    assert snapshot(engine) == before


def test_delete_removes_articles_and_unshared_blobs_only(seeded, capsys):
    cfg, engine = seeded
    with engine.connect() as conn:
        raw_1 = conn.scalar(select(Article.raw_sha256).where(Article.ticket_id == 1))
        blobs_before = conn.scalar(select(func.count()).select_from(Blob))
    code, out = run(cfg, capsys, "1", "--delete", "--yes", "--actor", "lead")
    assert code == 0
    assert out["done"] == {"tickets": 1, "articles": 1, "blobs": 1}
    with engine.connect() as conn:
        shas = set(conn.scalars(select(Blob.sha256)))
        assert SHARED_SHA in shas  # ticket 3's attachment is the same file
        assert raw_1 not in shas
        assert len(shas) == blobs_before - 1
        assert conn.scalar(select(func.count()).where(Article.ticket_id == 1)) == 0
        for table in ("ticket_queues", "articles", "audit_events"):
            gone = f"SELECT count(*) FROM {table} WHERE ticket_id = 1"
            assert conn.scalar(text(gone)) == 0
    assert tickets_by_id(engine).keys() == {2, 3, 4, 5, 6}
    (event,) = audits(engine, "mass-delete")
    assert (event.ticket_id, event.actor, event.detail["ticket"]) == (None, "lead", 1)
    # the full-text index forgot it too
    assert run(cfg, capsys, "--text", "printer")[1]["count"] == 0
    # and deleting ticket 3 now frees the shared file
    assert run(cfg, capsys, "3", "--delete", "--yes")[1]["done"]["blobs"] == 2
    with engine.connect() as conn:
        assert SHARED_SHA not in set(conn.scalars(select(Blob.sha256)))


def test_delete_on_postgresql(pg_url, tmp_path, capsys):
    cfg = seeded_config(tmp_path, pg_url)
    engine = db.connect(cfg.database_url)
    try:
        seed(engine)
        code, out = run(cfg, capsys, "--sla", "breached", "--delete", "--yes")
        assert code == 0 and out["done"] == {"tickets": 1, "articles": 1, "blobs": 1}
        assert tickets_by_id(engine).keys() == {1, 2, 3, 4, 6}
    finally:
        engine.dispose()
