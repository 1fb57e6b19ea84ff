"""Several daemons' workers on one real PostgreSQL: ticket ids unique, and the same message
arriving at two daemons (both queue addresses, an MTA redelivering to another node) is one
article with one acknowledgement, also when the two transactions overlap."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from sqlalchemy import Engine, select, text

from mailgate.db.models import Article, OutboxRow, Ticket
from mailgate.spool import Envelope
from tests.harness import load, message, offline, wait_until, write_config


def _node(tmp_path: Path, name: str, url: str):
    """One daemon's config, engine, spool and worker (its own data directory)."""
    cfg = load(write_config(tmp_path / name, database_url=url))
    return offline(cfg)


def _counts(engine: Engine) -> tuple[int, int, Counter[str]]:
    with engine.connect() as conn:
        tickets = list(conn.scalars(select(Ticket.id)))
        dedupe = Counter(conn.scalars(select(Article.dedupe_key).where(Article.kind == "inbound")))
        acks = Counter(conn.scalars(select(OutboxRow.message_id).where(OutboxRow.kind == "ack")))
    assert len(tickets) == len(set(tickets))
    assert all(n == 1 for n in dedupe.values()), dedupe
    assert all(n == 1 for n in acks.values())
    return len(tickets), sum(dedupe.values()), acks


def test_three_workers_same_messages_at_once(tmp_path: Path, pg_url: str) -> None:
    nodes = [_node(tmp_path, f"n{i}", pg_url) for i in range(3)]
    raws = [message(message_id=f"<same-{i}@example.com>", subject=f"q {i}") for i in range(60)]
    for _, spool, _ in nodes:
        for raw in raws:  # every message reaches every daemon
            spool.put(raw, Envelope(source="smtp", queue="support"))
    start = threading.Barrier(3)
    results = {}

    def work(i: int) -> None:
        start.wait()
        results[i] = nodes[i][2].drain()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    engine = nodes[0][0]
    n_tickets, n_articles, acks = _counts(engine)
    assert (n_tickets, n_articles, len(acks)) == (60, 60, 60)
    assert sum(r.stored for r in results.values()) == 60
    assert sum(r.duplicates for r in results.values()) == 120
    assert all(r.retried == 0 and r.shunted == 0 for r in results.values())
    assert all(spool.pending() == 0 for _, spool, _ in nodes)
    print(f"\nstored per daemon: {[results[i].stored for i in range(3)]}")
    for e, _, _ in nodes:
        e.dispose()


def _blocked_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            ).scalar_one()
        )


def _overlap(tmp_path: Path, pg_url: str, *, isolate: bool):
    """Daemon A has stored the message but not committed when daemon B takes it too."""
    (ea, sa, wa), (eb, sb, wb) = _node(tmp_path, "a", pg_url), _node(tmp_path, "b", pg_url)
    raw = message(message_id="<overlap@example.com>")
    for spool in (sa, sb):
        spool.put(raw, Envelope(source="smtp", queue="support"))
    (entry_a,) = sa.claim(1)
    out: dict[str, object] = {}

    def b() -> None:
        if isolate:  # the redo pass itself meets the conflict
            entries = sb.claim(1)
            raws = [sb.read(e) for e in entries]
            out["b"] = wb._transaction(entries, raws, [None] * len(raws), isolate=True)
        else:
            out["b"] = wb.process_batch()

    with ea.begin() as conn:
        wa.pipeline.process(conn, entry_a, sa.read(entry_a))
        tb = threading.Thread(target=b)
        tb.start()
        wait_until(lambda: _blocked_on_a_lock(ea), 20, "daemon B waiting on A's row")
    tb.join(30)
    assert _counts(ea)[:2] == (1, 1)
    for e in (ea, eb):
        e.dispose()
    return out["b"]


def test_overlapping_transactions_the_batch_redo_finds_the_duplicate(
    tmp_path: Path, pg_url: str
) -> None:
    r = _overlap(tmp_path, pg_url, isolate=False)
    assert (r.stored, r.duplicates, r.retried, r.shunted) == (0, 1, 0, 0)


def test_overlap_met_in_the_savepoint_pass_is_tried_once_more(tmp_path: Path, pg_url: str) -> None:
    committed, failed, outcomes = _overlap(tmp_path, pg_url, isolate=True)
    assert failed == [] and len(committed) == 1
    assert outcomes[0][1].action == "duplicate"


def test_daemons_starting_together_migrate_once(pg_url: str) -> None:
    from mailgate.db import engine as db

    start = threading.Barrier(3)
    engines: list[Engine] = []
    errors: list[BaseException] = []

    def boot() -> None:
        start.wait()
        try:
            engines.append(db.connect(pg_url))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=boot, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and len(engines) == 3
    with engines[0].connect() as conn:
        heads = set(conn.scalars(text("SELECT version_num FROM alembic_version")))
    assert "0007_leases" in heads
    for e in engines:
        e.dispose()


def test_a_batch_picked_as_deadlock_victim_is_redone(tmp_path: Path, pg_url: str) -> None:
    """Daemon B's batch takes follow-ups to tickets 2 then 1 while another daemon's
    transaction holds 1 and then wants 2: PostgreSQL breaks the deadlock by failing one of
    them; B's batch, if it was the one, is redone and stores both follow-ups."""
    from sqlalchemy.exc import OperationalError

    (ea, sa, wa), (eb, sb, wb) = _node(tmp_path, "a", pg_url), _node(tmp_path, "b", pg_url)
    for subject in ("one", "two"):
        sa.put(message(subject=subject), Envelope(source="smtp", queue="support"))
    assert wa.drain().stored == 2
    with ea.connect() as conn:
        t1, t2 = sorted(conn.scalars(select(Ticket.id)))
    for tid in (t2, t1):
        raw = message(subject=f"Re: [support #{tid}] more")
        sb.put(raw, Envelope(source="smtp", queue="support"))
    out: dict[str, object] = {}

    def b() -> None:
        try:
            out["b"] = wb.process_batch()
        except BaseException as e:  # noqa: BLE001 - reported below
            out["b"] = e

    bump = text("UPDATE tickets SET priority = priority WHERE id = :t")
    with ea.connect() as conn:
        tx = conn.begin()
        conn.execute(bump, {"t": t1})
        tb = threading.Thread(target=b)
        tb.start()
        wait_until(lambda: _blocked_on_a_lock(eb), 20, "daemon B waiting for ticket 1")
        try:
            conn.execute(bump, {"t": t2})  # waits for B: a deadlock, one of us is failed
            tx.commit()
        except OperationalError:
            tx.rollback()
    tb.join(60)
    r = out["b"]
    assert not isinstance(r, BaseException), r
    assert r.stored == 2 and r.retried == 0  # type: ignore[attr-defined]
    for e in (ea, eb):
        e.dispose()
