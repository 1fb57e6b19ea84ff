"""On PostgreSQL a batch's flush sends its writes in one pipeline (store/batch.py `flush`,
store/fast.py `writes_together`), yet fails as one statement at a time would.

A unique violation in the middle of the flush (an article whose message another writer
committed while the batch ran) is raised as SQLAlchemy's IntegrityError, not as the
pipeline's abort (an OperationalError, which would give the whole batch back to the spool
again and again): the worker redoes the batch message by message, finds that message
stored and stores the others once. The writes after the failing one in the same pipeline
leave nothing behind.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from mailgate.spool import Envelope
from mailgate.store.articles import add_article
from mailgate.store.batch import current
from mailgate.store.tickets import insert_ticket
from tests.harness import batches_redone, load, message, offline, write_config

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SMTP = Envelope(source="smtp", rcpt_tos=("support@example.test",))


def _messages() -> list[bytes]:
    return [
        message(message_id=f"<m{i}@example.com>", subject=f"Question {i}",
                sender=f"c{i}@example.org")
        for i in range(5)
    ]  # fmt: skip


def _commit_the_same_message(engine: Any, dedupe_key: str) -> None:
    """Another writer stores the message the batch holds (its dedupe key), and commits."""
    with engine.begin() as other:
        tid = insert_ticket(other, title="Beside", requester_addr="x@example.org",
                            requester_name="", queues=["support"], type="email",
                            priority=50, now=NOW)  # fmt: skip
        add_article(other, ticket_id=tid, kind="inbound", body="beside", now=NOW,
                    dedupe_key=dedupe_key)  # fmt: skip


def test_a_unique_violation_in_the_flush_redoes_the_batch_message_by_message(
    tmp_path, pg_url, monkeypatch
):
    cfg = write_config(tmp_path, database_url=pg_url, agents_toml="")  # no agents: rows held
    engine, spool, worker = offline(load(cfg))
    for raw in _messages():
        spool.put(raw, SMTP)
    redone = batches_redone(monkeypatch)
    process = worker.pipeline.process

    def beside(conn: Connection, entry, raw, pre):  # type: ignore[no-untyped-def]
        outcome = process(conn, entry, raw, pre)
        batch = current(conn)
        held = batch.held.get("articles", {}) if batch is not None else {}
        rows = [row for rows in held.values() for row in rows]
        if len(rows) == 3:  # the third message's article: held, not yet written
            _commit_the_same_message(engine, rows[-1]["dedupe_key"])
        return outcome

    monkeypatch.setattr(worker.pipeline, "process", beside)
    r = worker.process_batch(64)
    assert redone == [False, True]  # the flush failed, the batch was redone alone
    assert (r.stored, r.duplicates) == (4, 1)
    with engine.connect() as conn:
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("tickets", "articles", "outbox", "thread_refs")}  # fmt: skip
        keys = conn.execute(text("SELECT count(DISTINCT dedupe_key) FROM articles")).scalar()
    # the 4 others' tickets, articles and acknowledgements, and the one beside
    assert counts["tickets"] == 5 and counts["articles"] == 5 and keys == 5
    assert counts["outbox"] == 4
    engine.dispose()
