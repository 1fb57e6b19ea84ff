"""A batch's own rows get their ids from the batch and go in at its flush (store/ids.py,
store/batch.py), yet the database ends as when every message is stored alone.

"Alone" is the worker's savepoint path (one SAVEPOINT per message, no batch state), forced
for every batch. Both drains run the same messages in the same batches with one fixed
clock, then every table is compared row by row: on SQLite ids included (the batch counts
up from the largest id, as SQLite itself does); on PostgreSQL, whose sequences leave gaps
where a batch took a block of ids, each id by its rank in its table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Integer, select, text

from mailgate.db.tables import metadata
from mailgate.outgoing.compose import Outgoing
from mailgate.pipeline import steps
from mailgate.spool import Envelope
from mailgate.store import batch as batch_mod
from mailgate.store.articles import system_article
from mailgate.store.outbox import add_outbox
from mailgate.store.tickets import insert_ticket
from tests.corpora import bench_corpus
from tests.harness import batches_redone, load, message, offline, write_config
from tests.integration.test_notify_bytes import AGENTS, NOTIFIED

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DATA_CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"
SMTP = Envelope(source="smtp", rcpt_tos=("support@example.test",))
PIPE = Envelope(source="pipe", queue="support", received_at=NOW.timestamp())


def _bench_corpus(tmp: Path) -> list[bytes]:
    """The bench's corpus (tests/corpora.py; its ticket tags in thread order)."""
    return [p.read_bytes() for p in sorted(bench_corpus(tmp / "gen").glob("*.eml"))]


def _data_corpus() -> list[bytes]:
    """tests/data/corpus: real-world and malformed mail (some shunted, so batches redone)."""
    skip = ("MANIFEST.tsv", "README.md")
    return [p.read_bytes() for p in sorted(DATA_CORPUS.rglob("*")) if p.is_file()
            and p.name not in skip]  # fmt: skip


def _drain(root: Path, raws: list[bytes], db_url: str, alone: bool, agents: bool = False) -> Engine:
    # agents: two, notified of every customer mail of the queue (test_notify_bytes.py)
    cfg = write_config(
        root,
        database_url=db_url,
        batch_size=64,
        agents_toml=AGENTS if agents else "",
        queue_extra=NOTIFIED if agents else None,
    )
    engine, spool, worker = offline(load(cfg))
    worker.pipeline.clock = lambda: NOW
    if alone:  # every batch straight to the savepoint path, without a batch state
        worker._optimistic = lambda *args: None  # type: ignore[method-assign]
    for raw in raws:
        spool.put(raw, PIPE)
    with rows_held() as held:
        worker.drain()
    assert bool(held) is not alone  # the batch held rows back, the savepoint path none
    return engine


@contextmanager
def rows_held() -> Iterator[list[tuple[str, int, tuple[str, ...]]]]:
    """The rows batches hold back in the block (store/batch.py): each one's table, its
    statement (by id) and its keys in the order they had when it was held."""
    held: list[tuple[str, int, tuple[str, ...]]] = []
    hold = batch_mod.BatchState.hold

    def recorded(state, table, stmt, row):  # type: ignore[no-untyped-def]
        held.append((table, id(stmt), tuple(row)))
        hold(state, table, stmt, row)

    batch_mod.BatchState.hold = recorded  # type: ignore[method-assign]
    try:
        yield held
    finally:
        batch_mod.BatchState.hold = hold  # type: ignore[method-assign]


def _rows(
    engine: Engine, ranked: bool, drop: dict[str, Any], outbox_by_message_id: bool = False
) -> dict[str, list[str]]:
    """Every table's rows, sorted; `ranked`: each id (and each foreign key to one) by its
    rank among its table's ids; without the columns `drop` names; `outbox_by_message_id`:
    an outbox row's id (and each reference to one) by its Message-ID instead."""
    with engine.connect() as conn:
        found = {
            t.name: [r._asdict() for r in conn.execute(select(t))] for t in metadata.sorted_tables
        }
        if engine.dialect.name == "sqlite":  # the full-text index the flush fills
            for fts in ("articles_fts", "tickets_fts"):
                found[fts] = [
                    dict(r._mapping) for r in conn.execute(text(f"SELECT rowid, * FROM {fts}"))
                ]
    ranks: dict[str, dict[int, int]] = {}
    if ranked:
        for table in metadata.sorted_tables:
            id_col = table.c.get("id")
            if id_col is not None and isinstance(id_col.type, Integer):
                ids = sorted(r["id"] for r in found[table.name])
                ranks[table.name] = {i: n for n, i in enumerate(ids)}
    if outbox_by_message_id:
        ranks["outbox"] = {r["id"]: r["message_id"] for r in found["outbox"]}
    out = {}
    for table in metadata.sorted_tables:
        refs = {fk.parent.name: fk.column.table.name for fk in table.foreign_keys}
        refs.update({k: v for k, v in BY_NAME.items() if k in table.c})  # no FK: send_log
        refs.update({"id": table.name} if table.name in ranks else {})
        rows = []
        for r in found[table.name]:
            r = {k: ranks[refs[k]].get(v, v) if k in refs and refs[k] in ranks else v
                 for k, v in r.items()}  # fmt: skip
            rows.append(
                repr(sorted((k, v) for k, v in r.items() if k not in drop.get(table.name, ())))
            )
        out[table.name] = sorted(rows)
    for fts in found.keys() - out.keys():
        out[fts] = sorted(repr(sorted(r.items())) for r in found[fts])
    return out


BY_NAME = {"ticket_id": "tickets", "linked_id": "tickets", "outbox_id": "outbox"}
# where a ticket's number is written into text (the acknowledgement, the threading reasons)
NUMBERED = {"outbox": "raw", "articles": "verdict", "audit_events": "detail"}


def _same(
    tmp: Path, raws: list[bytes], url: Any, ranked: bool, agents: bool = False
) -> dict[str, list[str]]:
    engines = [
        _drain(tmp / side, raws, url(side), alone=side == "alone", agents=agents) for side in SIDES
    ]
    return compared(engines[0], engines[1], ranked, outbox_by_message_id=agents)


def compared(
    one: Engine, other: Engine, ranked: bool, outbox_by_message_id: bool = False
) -> dict[str, list[str]]:
    """`one`'s rows, having found them equal to `other`'s, table by table (the outbox's
    rows by Message-ID where `outbox_by_message_id`: a batch queues its notifications
    after its acknowledgements, store/batch.py `Notices`, so their ids come in another
    order than one message at a time)."""
    drop: dict[str, Any] = {}
    if ranked and _ticket_ids(one) != _ticket_ids(other):
        # PostgreSQL: a batch redone after a failure used up the ticket numbers its first
        # try took (as before this batch kept its rows back): compared by rank, and the
        # texts that carry a number are left out
        drop = NUMBERED
    if outbox_by_message_id:  # and send_log's lines by what they say
        drop = {**drop, "send_log": ("id",)}
    rows = _rows(one, ranked, drop, outbox_by_message_id)
    others = _rows(other, ranked, drop, outbox_by_message_id)
    for name in others:
        assert rows[name] == others[name], f"table {name} differs"
    return rows


SIDES = ("batch", "alone")


def _ticket_ids(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(conn.execute(text("SELECT id FROM tickets ORDER BY id")).scalars())


def _sqlite(tmp: Path) -> Any:
    return lambda side: ""  # the data directory's own SQLite file


@pytest.mark.parametrize("corpus", ["bench", "data"])
def test_the_batch_stores_what_the_savepoint_path_stores_on_sqlite(tmp_path, corpus):
    raws = _bench_corpus(tmp_path) if corpus == "bench" else _data_corpus()
    rows = _same(tmp_path, raws, _sqlite(tmp_path), ranked=False)
    assert len(rows["articles"]) > (1900 if corpus == "bench" else 100)
    if corpus == "bench":
        assert len(rows["tickets"]) == 909  # the generator's threads: threading exact


@pytest.mark.parametrize("corpus", ["bench", "data"])
def test_with_agents_notified_the_batch_stores_what_the_savepoint_path_stores(tmp_path, corpus):
    """The notifications wait in the batch for its held rows (store/batch.py, `Notices`);
    every row, notifications and their send_log lines included, is as stored alone."""
    raws = _bench_corpus(tmp_path) if corpus == "bench" else _data_corpus()
    rows = _same(tmp_path, raws, _sqlite(tmp_path), ranked=False, agents=True)
    notified = [r for r in rows["outbox"] if "'notify-" in r]
    assert len(notified) > (1900 if corpus == "bench" else 100)


@pytest.mark.parametrize("corpus", ["bench", "data"])
def test_the_batch_stores_what_the_savepoint_path_stores_on_postgres(
    tmp_path, pg_databases, corpus
):
    raws = _bench_corpus(tmp_path) if corpus == "bench" else _data_corpus()
    rows = _same(tmp_path, raws, lambda side: pg_databases(f"ids_{side}"), ranked=True)
    assert len(rows["articles"]) > (1900 if corpus == "bench" else 100)


def test_with_agents_notified_the_batch_stores_what_the_savepoint_path_stores_on_postgres(
    tmp_path, pg_databases
):
    """The notifications' reads on PostgreSQL, sent with the batch's waiting writes (the
    bench's corpus: no batch is redone, so the ticket numbers in the mails are the same
    on both sides)."""
    raws = _bench_corpus(tmp_path)
    rows = _same(
        tmp_path, raws, lambda side: pg_databases(f"ids_agents_{side}"), ranked=True, agents=True
    )
    assert len([r for r in rows["outbox"] if "'notify-" in r]) > 1900


def _conversation() -> list[bytes]:
    """Two new tickets, each followed up (one with a new CC, one reopening nothing), an
    automatic reply on one, and a last message that fails."""
    a = {"message_id": "<a@example.com>", "subject": "Printer is broken"}
    b = {"message_id": "<b@example.com>", "subject": "Scanner too", "sender": "b@example.org"}
    return [
        message(**a),
        message(**b),
        message(message_id="<a2@example.com>", in_reply_to="<a@example.com>", body="More.\n",
                extra="Cc: colleague@example.com"),
        message(message_id="<b2@example.com>", in_reply_to="<b@example.com>",
                sender="b@example.org", body="Still.\n"),
        message(message_id="<a3@example.com>", in_reply_to="<a2@example.com>", body="And.\n",
                references="<a@example.com> <a2@example.com>"),
        message(message_id="<p@example.com>", subject="POISON"),
    ]  # fmt: skip


@pytest.mark.parametrize("agents", [False, True], ids=["no agents", "agents notified"])
def test_a_batch_whose_last_message_fails_is_redone_as_the_savepoint_path(
    tmp_path, monkeypatch, agents
):
    """With agents notified, the notifications waiting in the failed batch go with it and
    the redo queues each once."""
    decide = steps.decide

    def failing(**facts):  # type: ignore[no-untyped-def]
        assert facts["parsed"].subject != "POISON", "a bug in the last message"
        return decide(**facts)

    monkeypatch.setattr(steps, "decide", failing)  # after the others' tickets and follow-ups
    redone = batches_redone(monkeypatch)

    rows = _same(tmp_path, _conversation(), _sqlite(tmp_path), ranked=False, agents=agents)
    assert redone[0] is False and redone[1] is True  # the batch failed, then was redone
    assert len(rows["tickets"]) == 2 and len(rows["articles"]) == 5
    assert len(rows["ticket_ccs"]) == 1
    # two agents told of each customer mail stored (the failing one is not), once each
    assert len([r for r in rows["outbox"] if "'notify-" in r]) == (10 if agents else 0)


def test_a_writer_beside_the_batch_gets_no_id_clash_on_postgres(tmp_path, pg_url, monkeypatch):
    """While a batch holds rows with ids it took from the sequences, another connection
    (as a CLI command or a second daemon) commits a ticket, a note and an outbox row."""
    cfg = write_config(tmp_path, database_url=pg_url, agents_toml="")  # no agents: rows held
    engine, spool, worker = offline(load(cfg))
    conversation = _conversation()[:5]
    for raw in conversation:
        spool.put(raw, SMTP)
    redone = batches_redone(monkeypatch)
    process = worker.pipeline.process

    def beside(conn, entry, raw, pre):  # type: ignore[no-untyped-def]
        outcome = process(conn, entry, raw, pre)
        with engine.begin() as other:  # its own transaction, committed mid-batch
            tid = insert_ticket(other, title="By hand", requester_addr="x@example.org",
                                requester_name="", queues=["support"], type="agent",
                                priority=50, now=NOW)  # fmt: skip
            system_article(other, tid, f"note beside {entry.name}", NOW)
            mid = f"<beside-{entry.name}@example.test>"
            body = b"Subject: x\r\n\r\nx\r\n"
            out = Outgoing("reminder", "support@example.test", ("x@example.org",), mid, body, tid)
            assert add_outbox(other, out, NOW, NOW)
        return outcome

    monkeypatch.setattr(worker.pipeline, "process", beside)
    with rows_held() as held:
        r = worker.process_batch(64)
    assert held
    assert r.stored == 5 and redone == [False]  # no clash: the batch was not redone
    with engine.connect() as conn:
        counts = {t: conn.execute(text(f"SELECT count(*), count(DISTINCT id) FROM {t}")).one()
                  for t in ("tickets", "articles", "outbox")}  # fmt: skip
    # the batch's 2 tickets, 5 articles and 2 acknowledgements, and 5 of each beside it
    assert counts == {"tickets": (7, 7), "articles": (10, 10), "outbox": (7, 7)}
