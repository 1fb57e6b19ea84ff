"""A batch reads ahead and defers writes (store/batch.py) yet stores what one-by-one would.

Each test drains messages through one optimistic batch and checks what only the batch
state can get wrong: a follow-up of a ticket created earlier in the same batch, a
duplicate of a message earlier in the batch or already stored, one acknowledgement per
sender and period, the thread references and audit events written at the end.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select

from mailgate.db.models import Article, AuditEvent, AutoResponseLog, ThreadRef
from mailgate.pipeline import prepare
from mailgate.pipeline.worker import BatchResult
from mailgate.spool import Envelope
from mailgate.store import batch as batch_mod
from tests.harness import load, message, offline, outbox, write_config

SMTP = Envelope(source="smtp", rcpt_tos=("support@example.test",))


def _worker(root: Path):  # type: ignore[no-untyped-def]
    return offline(load(write_config(root)))


def _drain(worker, size: int) -> BatchResult:  # type: ignore[no-untyped-def]
    total = BatchResult()
    while (r := worker.process_batch(size)).handled:
        for name in ("stored", "duplicates", "retried", "shunted"):
            setattr(total, name, getattr(total, name) + getattr(r, name))
    return total


def _conversation() -> list[bytes]:
    """A new ticket, its follow-ups by reference and by reply chain, a redelivery, a
    second new ticket from the same sender, a stranger answering on the first ticket."""
    first = message(message_id="<a@example.com>", subject="Printer is broken")
    chain = {"in_reply_to": "<b@example.com>", "references": "<a@example.com> <b@example.com>"}
    stranger = {"sender": "other@example.org", "in_reply_to": "<a@example.com>"}
    return [
        first,
        message(message_id="<b@example.com>", in_reply_to="<a@example.com>", body="More.\n"),
        message(message_id="<c@example.com>", body="Still broken.\n", **chain),
        first,  # redelivered in the same batch: a duplicate
        message(message_id="<d@example.com>", subject="Scanner too", body="Another thing.\n"),
        message(message_id="<e@example.org>", body="I am not the customer.\n", **stranger),
    ]


def _stored(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return {
            "articles": conn.execute(
                select(Article.message_id, Article.ticket_id, Article.kind).order_by(Article.id)
            ).all(),
            "refs": sorted(conn.execute(select(ThreadRef.message_id, ThreadRef.ticket_id)).all()),
            "audit": sorted(
                conn.execute(select(AuditEvent.ticket_id, AuditEvent.action, AuditEvent.actor))
            ),
            "autoresponses": conn.execute(
                select(AutoResponseLog.queue, AutoResponseLog.sender, AutoResponseLog.count)
            ).all(),
        }


def test_one_batch_stores_what_message_by_message_stores(tmp_path):
    results = {}
    for size in (1, 64):
        engine, spool, worker = _worker(tmp_path / str(size))
        for raw in _conversation():
            spool.put(raw, SMTP)
        r = _drain(worker, size)
        assert (r.stored, r.duplicates, r.shunted, r.retried) == (5, 1, 0, 0)
        results[size] = _stored(engine)
        acks = [row for row in outbox(engine) if row.kind == "ack"]
        assert len(acks) == 3  # every new ticket is acknowledged
    assert results[64] == results[1]
    by_mid = {mid: tid for mid, tid, kind in results[64]["articles"] if kind == "inbound"}
    # follow-ups of a ticket created earlier in the same batch join it; the stranger not
    assert by_mid["<a@example.com>"] == by_mid["<b@example.com>"] == by_mid["<c@example.com>"]
    assert (
        len({by_mid["<a@example.com>"], by_mid["<d@example.com>"], by_mid["<e@example.org>"]}) == 3
    )
    assert ("support", "customer@example.com", 2) in results[64]["autoresponses"]


def test_a_redelivery_of_an_earlier_batch_is_found_by_the_read_ahead(tmp_path):
    engine, spool, worker = _worker(tmp_path)
    first, second = _conversation()[:2]
    spool.put(first, SMTP)
    assert worker.drain().stored == 1
    spool.put(first, SMTP)
    spool.put(second, SMTP)
    r = worker.drain()
    assert (r.stored, r.duplicates) == (1, 1)
    arts = _stored(engine)["articles"]
    assert len({tid for _, tid, _ in arts}) == 1  # the follow-up found the earlier ticket


def test_the_savepoint_redo_runs_without_the_batch_state(tmp_path, monkeypatch):
    engine, spool, worker = _worker(tmp_path)
    classify = prepare.classify
    states = []

    def poisoned(p, *args, **kwargs):  # type: ignore[no-untyped-def]
        states.append(batch_mod.current(steps_conn[0]) if steps_conn else None)
        if p.subject == "POISON":
            raise RuntimeError("injected bug")
        return classify(p, *args, **kwargs)

    steps_conn: list[object] = []
    process = worker.pipeline.process

    def remember_conn(conn, *args, **kwargs):  # type: ignore[no-untyped-def]
        steps_conn[:] = [conn]
        return process(conn, *args, **kwargs)

    monkeypatch.setattr(prepare, "classify", poisoned)  # ahead, then in the classify step
    monkeypatch.setattr(worker.pipeline, "process", remember_conn)
    msgs = _conversation()[:3]
    for raw in (msgs[0], message(subject="POISON"), msgs[1], msgs[2]):
        spool.put(raw, SMTP)

    r = worker.process_batch()

    assert (r.stored, r.retried) == (3, 1)
    assert any(s is not None for s in states) and states[-1] is None  # redo: no state
    arts = _stored(engine)["articles"]
    assert len({tid for _, tid, _ in arts}) == 1  # threaded exactly in the redo too
    refs = _stored(engine)["refs"]
    assert {mid for mid, _ in refs} >= {"<a@example.com>", "<b@example.com>", "<c@example.com>"}


def test_the_acknowledgements_message_ids_are_thread_references_after_the_flush(tmp_path):
    """The batch writes an acknowledgement's Message-ID at its flush (store/articles.py,
    `ours`): committed with the batch, and a customer's answer to the acknowledgement in a
    later batch joins the ticket by it (its requester's: the first ticket)."""
    engine, spool, worker = _worker(tmp_path)
    for raw in _conversation():
        spool.put(raw, SMTP)
    assert worker.process_batch(64).stored == 5
    acks = [row for row in outbox(engine) if row.kind == "ack"]
    refs = dict(_stored(engine)["refs"])
    assert len(acks) == 3 and all(refs[a.message_id] == a.ticket_id for a in acks)
    answer = message(message_id="<z@example.com>", subject="Thanks", body="Got it.\n",
                     in_reply_to=acks[0].message_id)  # fmt: skip
    spool.put(answer, SMTP)
    assert worker.process_batch(64).stored == 1
    arts = _stored(engine)["articles"]
    assert arts[-1][0] == "<z@example.com>" and arts[-1][1] == acks[0].ticket_id
