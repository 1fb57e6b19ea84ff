"""An optimistic batch indexes its articles and tickets for full-text search at its flush
(SQLite, store/batch.py; db/models_search.py): after it commits, every row is searchable,
none is left pending and the FTS5 index holds exactly the content tables' text, whether
the batch went through optimistically, was redone message by message, or changed a row
before its flush. On PostgreSQL nothing is ever pending (its GIN indexes need no help)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from mailgate.cli.main import main as cli_main
from mailgate.db.models_search import FULL_TEXT_COLUMNS
from mailgate.pipeline import prepare
from mailgate.pipeline.pool import PreparePool
from mailgate.spool import Envelope
from mailgate.store.articles import add_article
from mailgate.store.batch import batch_state, flush
from mailgate.store.tickets import insert_ticket, update_ticket
from tests.harness import load, message, offline, write_config

SMTP = Envelope(source="smtp", rcpt_tos=("support@example.test",))
NEW_TICKETS = 12


def _setup(root: Path, url: str = ""):  # type: ignore[no-untyped-def]
    cfg = load(write_config(root, database_url=url))
    engine, spool, worker = offline(cfg)
    return cfg, engine, spool, worker


def _conversation() -> list[bytes]:
    """NEW_TICKETS new tickets, each with a word of its own in the subject and in the body,
    and a follow-up of each with another word of its own."""
    mails = []
    for n in range(NEW_TICKETS):
        new = {"message_id": f"<new{n}@example.com>", "subject": f"Printer titleword{n} broken",
               "body": f"Hello,\nthe printer says bodyword{n}.\n"}  # fmt: skip
        more = {"message_id": f"<more{n}@example.com>", "in_reply_to": new["message_id"],
                "subject": "Re: " + new["subject"],
                "body": f"Still broken: followword{n}.\n"}  # fmt: skip
        mails += [message(**new), message(**more)]
    return mails


def _search(cfg, capsys, *argv: str) -> list[int]:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert cli_main(["-c", str(cfg.path), "tickets", "search", *argv, "--json"]) == 0
    return [t["id"] for t in json.loads(capsys.readouterr().out)["tickets"]]


def _pending(engine: Engine) -> int:
    with engine.connect() as conn:
        return sum(
            conn.execute(text(f"SELECT count(*) FROM {t} WHERE search_pending")).scalar_one()
            for t in ("articles", "tickets")
        )


def _index_is_whole(engine: Engine) -> None:
    """Each FTS5 index holds exactly its content table's words: FTS5's own check, and its
    vocabulary (each word's rows and occurrences) equal to that of an index built afresh
    from the table (a row missing, indexed twice or with older text differs)."""
    with engine.begin() as conn:
        for table, (fts, columns) in FULL_TEXT_COLUMNS.items():
            cols = ", ".join(columns)
            conn.execute(text(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)"))
            conn.execute(text(f"CREATE VIRTUAL TABLE temp.fresh USING fts5({cols}, "
                              "tokenize='unicode61 remove_diacritics 2')"))  # fmt: skip
            conn.execute(text(f"INSERT INTO temp.fresh SELECT {cols} FROM {table}"))
            conn.execute(text(f"CREATE VIRTUAL TABLE temp.kept USING fts5vocab(main, {fts}, row)"))
            conn.execute(text("CREATE VIRTUAL TABLE temp.made USING fts5vocab(temp, fresh, row)"))
            vocabulary = "SELECT term, doc, cnt FROM temp.{} ORDER BY term"
            kept = conn.execute(text(vocabulary.format("kept"))).all()
            assert kept and kept == conn.execute(text(vocabulary.format("made"))).all()
            for name in ("kept", "made", "fresh"):
                conn.execute(text(f"DROP TABLE temp.{name}"))


def _every_word_found(cfg, capsys) -> None:  # type: ignore[no-untyped-def]
    tickets = _search(cfg, capsys)
    assert len(tickets) == NEW_TICKETS
    for n in range(NEW_TICKETS):
        (tid,) = _search(cfg, capsys, f"titleword{n}")  # the title: the quick search
        assert _search(cfg, capsys, "--text", f"bodyword{n}") == [tid]
        assert _search(cfg, capsys, "--text", f"followword{n}") == [tid]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_batch_leaves_every_row_searchable_and_none_pending(database, tmp_path, capsys, request):
    url = request.getfixturevalue("pg_url") if database == "postgresql" else ""
    cfg, engine, spool, worker = _setup(tmp_path, url)
    try:
        for raw in _conversation():
            spool.put(raw, SMTP)
        r = worker.process_batch(64)  # one optimistic batch for all of them
        assert (r.stored, r.retried, r.shunted) == (2 * NEW_TICKETS, 0, 0)
        assert _pending(engine) == 0
        if database == "sqlite":
            _index_is_whole(engine)
        _every_word_found(cfg, capsys)
    finally:
        engine.dispose()


def test_the_savepoint_redo_is_indexed_by_the_triggers(tmp_path, capsys, monkeypatch):
    cfg, engine, spool, worker = _setup(tmp_path)
    classify = prepare.classify

    def poisoned(p, *args, **kwargs):  # type: ignore[no-untyped-def]
        if p.subject == "POISON":
            raise RuntimeError("injected bug")
        return classify(p, *args, **kwargs)

    monkeypatch.setattr(prepare, "classify", poisoned)  # ahead, then in the classify step
    worker.pipeline.pool = PreparePool(0)  # prepared in this process, where it is poisoned
    mails = _conversation()
    for raw in (*mails[:3], message(subject="POISON"), *mails[3:]):
        spool.put(raw, SMTP)
    r = worker.process_batch(64)  # fails optimistically, redone with a savepoint each
    assert (r.stored, r.retried) == (2 * NEW_TICKETS, 1)
    assert _pending(engine) == 0
    _index_is_whole(engine)
    _every_word_found(cfg, capsys)


def _new_ticket(conn, title: str, body: str, now) -> int:  # type: ignore[no-untyped-def]
    tid = insert_ticket(conn, title=title, requester_addr="a@example.com", requester_name="",
                        queues=["support"], type="email", priority=50, now=now)  # fmt: skip
    add_article(conn, ticket_id=tid, kind="inbound", body=body, now=now)
    return tid


def _change(conn, tid: int, title: str, body: str) -> None:  # type: ignore[no-untyped-def]
    update_ticket(conn, tid, {"title": title})
    conn.execute(text("UPDATE articles SET body_text = :b WHERE ticket_id = :t"),
                 {"b": body, "t": tid})  # fmt: skip


def test_rows_changed_in_the_batch_are_indexed_as_they_are_at_its_flush(tmp_path, capsys):
    cfg, engine, _, worker = _setup(tmp_path)
    now = worker.pipeline.clock()
    # the first batch of a new database: its rows changed before the flush (the triggers
    # leave a pending row alone: FTS5 refuses to delete what it never indexed)
    with engine.begin() as conn, batch_state(conn) as batch:
        first = _new_ticket(conn, "First firsttitle", "firstbody", now)
        _change(conn, first, "Renamed renamedtitle", "changedbody")
        flush(conn, batch)
    # a later batch: a new row changed, and a row of an earlier batch (indexed) changed
    with engine.begin() as conn, batch_state(conn) as batch:
        second = _new_ticket(conn, "Second secondtitle", "secondbody", now)
        _change(conn, second, "Again againtitle", "againbody")
        _change(conn, first, "Retitled retitled", "rebody")
        flush(conn, batch)
    assert _pending(engine) == 0
    _index_is_whole(engine)
    for words, found in (
        (("renamedtitle",), []),
        (("firsttitle",), []),
        (("retitled",), [first]),
        (("secondtitle",), []),
        (("againtitle",), [second]),
        (("--text", "firstbody"), []),
        (("--text", "changedbody"), []),
        (("--text", "rebody"), [first]),
        (("--text", "secondbody"), []),
        (("--text", "againbody"), [second]),
    ):
        assert _search(cfg, capsys, *words) == found, words
    engine.dispose()
