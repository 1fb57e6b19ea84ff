"""`mailgate tickets search` on the seeded database (tests/seeded.py), on SQLite (FTS5)
and on PostgreSQL (tsvector + GIN): every filter, the full text, the quick search."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from mailgate.cli.main import main as cli_main
from mailgate.db import engine as db
from mailgate.store.articles import add_article
from mailgate.store.tickets import update_ticket
from tests.seeded import NOW, seed, seeded_config, seeded_database


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded(request, tmp_path):
    yield from seeded_database(request, tmp_path)


def search(cfg, capsys, *argv: str) -> list[int]:
    """The ids found, in the order printed."""
    capsys.readouterr()
    assert cli_main(["-c", str(cfg.path), "tickets", "search", *argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == len(out["tickets"])
    return [t["id"] for t in out["tickets"]]


# every filter, alone; the expected ids are in priority-then-age order
FILTERS = [
    ((), [5, 2, 4, 6, 1, 3]),
    (("--queue", "billing"), [2, 6]),
    (("--queue", "support"), [5, 2, 4, 1]),
    (("--queue", "sales", "--queue", "billing"), [2, 6, 3]),
    (("--status", "open"), [5, 2, 4, 1]),  # open = every status not resolved or closed
    (("--status", "closed", "--status", "resolved"), [6, 3]),
    (("--assignee", "alice"), [2, 4]),
    (("--unassigned",), [5, 6, 1, 3]),
    (("--requester", "carla@example.com"), [5, 1]),
    (("--requester", "CARLA@Example.com"), [5, 1]),
    (("--requester", "@corp.example"), [2, 6, 3]),
    (("--requester", "other.example"), [4]),
    (("--tag", "billing"), [2]),
    (("--tag", "billing", "--tag", "dns"), []),
    (("--category", "invoices"), [2]),
    (("--priority-min", "60"), [5, 2, 4]),
    (("--priority-min", "45", "--priority-max", "55"), [6, 1]),
    (("--created-from", "2026-11-16"), [5, 2, 6, 1]),
    (("--created-from", "2026-11-17", "--created-to", "2026-11-17"), [2, 6]),
    (("--created-to", "2026-10-31"), [4]),
    (("--updated-from", "2026-11-17T12:00:00"), [2, 6, 1]),
    (("--closed-from", "2026-11-01"), [3]),
    (("--sla", "breached"), [5]),
    (("--sla", "paused"), [4]),
    (("--sla", "ok"), [2, 4, 1]),
    (("--sla", "missed"), [5, 2]),
    (("--queue", "support", "--unassigned", "--priority-min", "60"), [5]),
]


@pytest.mark.parametrize(("argv", "expected"), FILTERS)
def test_each_filter_finds_exactly_the_tickets_counted_by_hand(seeded, capsys, argv, expected):
    cfg, _ = seeded
    assert search(cfg, capsys, *argv) == expected


TEXTS = [
    ("printer", [1]),  # a title word and a body word
    ("grinding noise", [1]),  # every word, in one article
    ("invoice twice", [2]),
    ("invoice printer", []),  # not one document holds both
    ("server", [5]),  # no stemming: "servers" is another word
    ("server*", [5, 3]),  # a prefix
    ("zone", [4]),
    ("café", [4]),
    ('"quote', [3]),  # stray syntax is a word, never an error
    ("elephant", []),
]


@pytest.mark.parametrize(("words", "expected"), TEXTS)
def test_full_text_over_titles_and_bodies(seeded, capsys, words, expected):
    cfg, _ = seeded
    assert search(cfg, capsys, "--text", words) == expected


@pytest.mark.parametrize(
    ("quick", "expected"),
    [("3", [3]), ("#4", [4]), ("carla@example.com", [5, 1]), ("down", [5]), ("noise", [])],
)
def test_quick_search_by_id_address_or_title_words(seeded, capsys, quick, expected):
    cfg, _ = seeded
    assert search(cfg, capsys, quick) == expected  # "noise" is in a body, not a title


def test_the_index_follows_new_articles_and_changed_titles(seeded, capsys):
    cfg, engine = seeded
    with engine.begin() as conn:
        add_article(conn, ticket_id=6, kind="inbound", body="a stapler jammed", now=NOW)
        update_ticket(conn, 3, {"title": "Offer for hardware"})
    assert search(cfg, capsys, "--text", "stapler") == [6]
    assert search(cfg, capsys, "hardware") == [3]
    assert search(cfg, capsys, "Quote") == []
    assert search(cfg, capsys, "--text", "quote") == [3]  # still in its article


def test_the_full_text_index_is_the_dialects_own(seeded):
    _, engine = seeded
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE name IN ('articles_fts', 'tickets_fts')"
            assert sorted(conn.scalars(text(sql))) == ["articles_fts", "tickets_fts"]
        else:
            sql = "SELECT indexdef FROM pg_indexes WHERE indexname LIKE 'ix_fts_%'"
            assert all("USING gin" in d for d in conn.scalars(text(sql)))
            assert len(conn.scalars(text(sql)).all()) == 2


def test_a_table_lists_the_tickets_and_the_count(seeded, capsys, monkeypatch):
    cfg, _ = seeded
    monkeypatch.setenv("COLUMNS", "200")
    assert cli_main(["-c", str(cfg.path), "tickets", "search", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "6 ticket(s), the first 2" in out
    assert "Server down" in out and "Invoice wrong" in out and "Printer" not in out


def test_a_bad_date_is_a_usage_error(seeded, capsys):
    cfg, _ = seeded
    assert cli_main(["-c", str(cfg.path), "tickets", "search", "--created-from", "11/3"]) == 2
    assert "not a date" in capsys.readouterr().err


def test_the_migration_indexes_the_rows_already_there(tmp_path, capsys):
    from alembic import command

    cfg = seeded_config(tmp_path)
    engine = db.connect(cfg.database_url)
    try:
        alembic = db.alembic_config(cfg.database_url)
        command.downgrade(alembic, "0006")  # a database from before the search
        with engine.connect() as conn:
            names = set(conn.scalars(text("SELECT name FROM sqlite_master")))
        assert "articles_fts" not in names and "ix_tickets_created_at" not in names
        seed(engine)
        db.upgrade(engine)
    finally:
        engine.dispose()
    assert search(cfg, capsys, "--text", "grinding") == [1]
    assert search(cfg, capsys, "Server") == [5]


def test_sqlite_ignores_accents(tmp_path, capsys):
    cfg = seeded_config(tmp_path)
    engine = db.connect(cfg.database_url)
    seed(engine)
    engine.dispose()
    assert search(cfg, capsys, "--text", "cafe") == [4]
