"""The same mail path on PostgreSQL: nothing in mailgate is SQLite-only."""

from __future__ import annotations

from tests.harness import load, message, offline, outbox, running, tickets, wait_until, write_config
from tests.servers import SmtpSink


def test_mail_path_on_postgres(tmp_path, pg_url, smtp_sink: SmtpSink):
    cfg = load(write_config(tmp_path, relay_port=smtp_sink.port, database_url=pg_url))
    with running(cfg) as d:
        raw = message(message_id="<pg-1@example.com>", subject="Überweisung fehlt")
        d.send(raw, rcpts=["support@example.test", "billing@example.test"])
        d.send(raw, rcpts=["billing@example.test"])  # redelivery: no second article
        wait_until(lambda: tickets(d.engine) and any(r.kind == "ack" for r in outbox(d.engine)))
        tid = tickets(d.engine)[0].id
        d.send(message(subject=f"Re: [support #{tid}] Überweisung fehlt", body="Noch da?\n"))
        wait_until(lambda: len(tickets(d.engine)[0].articles) == 2)
        wait_until(lambda: all(r.status == "sent" for r in outbox(d.engine)))
        ts = tickets(d.engine)
    assert len(ts) == 1 and ts[0].title == "Überweisung fehlt"
    assert {q.queue for q in ts[0].queues} == {"support", "billing"}
    assert [r.kind for r in outbox(d.engine)].count("ack") == 1


def test_corpus_sample_on_postgres(tmp_path, pg_url):
    from pathlib import Path

    from mailgate.spool import Envelope

    cfg = load(write_config(tmp_path, database_url=pg_url))
    engine, spool, worker = offline(cfg)
    corpus = Path(__file__).resolve().parent.parent / "data" / "corpus"
    files = sorted(p for p in corpus.rglob("*.eml"))
    for p in files:
        spool.put(p.read_bytes(), Envelope(source="pipe", queue="support"))
    r = worker.drain()
    # NUL bytes, odd charsets and huge headers must store on PostgreSQL as on SQLite
    assert r.retried == 0
    assert r.stored + r.duplicates + r.shunted == len(files)
    assert all(e.envelope.failures[-1]["stage"] in ("parse", "route") for e in spool.shunted())
