"""What `store.apply` and its writers hold and write (store/tickets.py, store/articles.py).

`apply` looks the batch's state up once and gives it to each writer; a writer called
without it looks it up. Crafted batches (a new ticket with a CC, a tag and an attachment,
its follow-ups in the same batch, a duplicate, a ticket reopened, a resolved ticket
answered, a stranger's mail on a ticket) are stored through one optimistic batch and
through the savepoint path (no batch state), on SQLite and PostgreSQL, and every table
is compared. The rows a batch holds for one statement have one key order, so the flush
writes each statement with one executemany.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from mailgate.db.models import Ticket
from mailgate.store import batch as batch_mod
from mailgate.store.articles import blobs, put_blob
from tests.harness import load, message, offline, write_config
from tests.integration.test_batch_ids import NOW, PIPE, compared, rows_held

FIRST = {"message_id": "<first@example.com>", "subject": "Printer is broken"}
CLOSED = {"message_id": "<closed@example.com>", "subject": "Old trouble", "sender": "c@example.org"}
RESOLVED = {"message_id": "<resolved@example.com>", "subject": "Fixed?", "sender": "r@example.org"}


def _with_attachment(mid: str) -> bytes:
    m = EmailMessage()
    m["From"] = "Ann <ann@example.net>"
    m["To"] = "support@example.test"
    m["Subject"] = "A screenshot"
    m["Message-ID"] = mid
    m["Cc"] = "boss@example.net"
    m.set_content("See the picture.\n")
    m.add_attachment(b"\x89PNG fake", maintype="image", subtype="png", filename="shot.png")
    return m.as_bytes()


def _earlier() -> list[bytes]:
    """Tickets that exist before the crafted batch: one to be closed, one resolved."""
    return [message(**CLOSED), message(**RESOLVED)]


def _crafted() -> list[bytes]:
    first = message(**FIRST, extra="Cc: colleague@example.com")
    return [
        first,
        message(message_id="<f2@example.com>", in_reply_to=FIRST["message_id"], body="More.\n"),
        first,  # redelivered in the same batch: a duplicate
        message(message_id="<c2@example.org>", in_reply_to=CLOSED["message_id"],
                sender=CLOSED["sender"], body="It is back.\n"),
        message(message_id="<r2@example.org>", in_reply_to=RESOLVED["message_id"],
                sender=RESOLVED["sender"], body="Not fixed.\n"),
        _with_attachment("<shot@example.net>"),
        message(message_id="<s2@example.net>", in_reply_to="<shot@example.net>",
                sender="boss@example.net", body="Seen.\n", extra="Cc: third@example.net"),
        message(message_id="<x@example.org>", in_reply_to=FIRST["message_id"],
                sender="stranger@example.org", body="Me too.\n"),
        message(**CLOSED),  # a redelivery of a message stored in an earlier batch
    ]  # fmt: skip


def _drain(
    root: Path, db_url: str, alone: bool, earlier: list[bytes], crafted: list[bytes]
) -> tuple[Engine, dict[Any, set[Any]]]:
    cfg = write_config(root, database_url=db_url, batch_size=64, agents_toml="")
    engine, spool, worker = offline(load(cfg))
    worker.pipeline.clock = lambda: NOW
    if alone:  # straight to the savepoint path, without a batch state
        worker._optimistic = lambda *args: None  # type: ignore[method-assign]
    for raw in earlier:
        spool.put(raw, PIPE)
    worker.drain()
    with engine.begin() as conn:
        t = Ticket.__table__
        conn.execute(update(t).where(t.c.title == CLOSED["subject"]).values(
            status="closed", closed_at=NOW))  # fmt: skip
        conn.execute(update(t).where(t.c.title == RESOLVED["subject"]).values(
            status="resolved", resolved_at=NOW))  # fmt: skip
    for raw in crafted:
        spool.put(raw, PIPE)
    with rows_held() as held:
        r = worker.drain()
    keys: dict[tuple[str, int], set[tuple[str, ...]]] = defaultdict(set)  # key orders
    for table, stmt, order in held:
        keys[(table, stmt)].add(order)
    assert (r.stored, r.duplicates, r.shunted) == (7, 2, 0)
    assert bool(keys) is not alone
    return engine, keys


def _statuses(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        t = Ticket.__table__
        return dict(conn.execute(select(t.c.title, t.c.status)).all())  # type: ignore[arg-type]


def _same(tmp: Path, url: Callable[[str], str], ranked: bool) -> dict[str, list[str]]:
    raws = _earlier(), _crafted()  # made once: both sides store the same bytes
    (batch, keys), (alone, _) = (
        _drain(tmp / s, url(s), s == "alone", *raws) for s in ("batch", "alone")
    )
    for (table, _stmt), orders in keys.items():
        assert len(orders) == 1, f"{table}: held rows in {len(orders)} key orders"
    assert {table for table, _ in keys} >= {"tickets", "articles", "ticket_ccs", "attachments"}
    statuses = _statuses(batch)
    assert statuses[CLOSED["subject"]] == "reopened"
    assert statuses[RESOLVED["subject"]] == "open"
    return compared(batch, alone, ranked)


def test_a_crafted_batch_stores_what_the_savepoint_path_stores_on_sqlite(tmp_path):
    rows = _same(tmp_path, lambda side: "", ranked=False)
    assert len(rows["tickets"]) == 5  # the stranger's mail starts its own ticket
    assert len(rows["articles"]) == 9
    assert len(rows["attachments"]) == 1


def test_a_crafted_batch_stores_what_the_savepoint_path_stores_on_postgres(tmp_path, pg_databases):
    rows = _same(tmp_path, lambda side: pg_databases(f"writers_{side}"), ranked=True)
    assert len(rows["tickets"]) == 5
    assert len(rows["articles"]) == 9


def test_a_writer_given_no_batch_state_writes_at_once(tmp_path):
    cfg = write_config(tmp_path, agents_toml="")
    engine, _, _ = offline(load(cfg))
    with engine.begin() as conn, batch_mod.batch_state(conn) as state:
        put_blob(conn, "a" * 64, b"held", state=state)
        put_blob(conn, "b" * 64, b"at once", state=None)  # as outside any batch
        put_blob(conn, "c" * 64, b"looked up")  # no state given: the one on the connection
        held = [r["sha256"] for rows in state.held["blobs"].values() for r in rows]
        # the write at once went to the database, which first took the row held before it
        assert held == ["c" * 64] and state.blobs == {"c" * 64}
        batch_mod.flush(conn, state)
    with engine.connect() as conn:
        stored = set(conn.execute(select(blobs.c.sha256)).scalars())
    assert stored == {"a" * 64, "b" * 64, "c" * 64}
