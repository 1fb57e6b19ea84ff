"""Parsing in spawned processes ahead of the database (pipeline/pool.py), in spool order.

A process that dies on a message (killed, out of memory, a crash in C) is a shunt with
the reason for that message, never a lost message or a dead worker.
"""

from __future__ import annotations

import os

from mailgate.pipeline.pool import DIED, PreparePool
from mailgate.pipeline.prepare import Prepared, prepare
from mailgate.spool import Envelope, Spool
from tests.harness import load, message, offline, tickets, write_config

SMTP = Envelope(source="smtp", rcpt_tos=("support@example.test",))
KILL = b"X-Test-Kill-Parser: yes"


def dying_prepare(raw: bytes) -> Prepared:
    """prepare(), but the process dies on a marked message (a module-level function: the
    spawned processes import it by name)."""
    if KILL in raw:
        os._exit(70)
    return prepare(raw)


def _messages(n: int, kill_at: int | None = None) -> list[bytes]:
    out = []
    for i in range(n):
        extra = KILL.decode() if i == kill_at else ""
        out.append(
            message(
                message_id=f"<m{i}@example.com>",
                in_reply_to=f"<m{i - 1}@example.com>" if i % 2 else None,
                subject=f"Problem {i // 2}",
                extra=extra,
            )
        )
    return out


def test_the_pool_parses_in_order_and_a_dying_process_shunts_only_its_message(tmp_path):
    cfg = load(write_config(tmp_path))
    engine, spool, worker = offline(cfg)
    worker.pipeline.pool = PreparePool(2, fn=dying_prepare)
    for raw in _messages(20, kill_at=7):
        spool.put(raw, SMTP)

    r = worker.drain()

    assert (r.stored, r.shunted, r.retried) == (19, 1, 0)
    [entry] = spool.shunted()
    assert [f["reason"] for f in entry.envelope.failures] == [DIED]
    assert KILL in spool.shunt_read(entry.name)
    # every other message threaded as in-process parsing threads it: pairs share a ticket
    assert len(tickets(engine)) == 10


def test_pool_and_in_process_parsing_store_the_same(tmp_path):
    stored = {}
    for processes in (0, 2):
        cfg = load(write_config(tmp_path / str(processes)))
        engine, spool, worker = offline(cfg)
        worker.pipeline.pool = PreparePool(processes)
        for raw in _messages(24):
            spool.put(raw, SMTP)
        assert worker.drain().stored == 24
        stored[processes] = sorted((t.title, t.requester_addr) for t in tickets(engine))
    assert stored[0] == stored[2] and len(stored[0]) == 12


def test_python_dash_m_mailgate_process_parses_in_spawned_processes(tmp_path):
    """The CLI's one-shot drain with the pool: spawned processes start from the installed
    package (not the CLI), parse, and end with the drain."""
    from tests.reliability.daemon_proc import mailgate

    path = write_config(tmp_path, worker_extra="parse_processes = 2\n")
    spool = Spool(load(path).spool_dir)
    for raw in _messages(16):
        spool.put(raw, SMTP)
    out = mailgate(path, "process", timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    assert b"stored 16, duplicates 0, retried 0, shunted 0" in out.stdout
