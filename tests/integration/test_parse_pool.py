"""Parsing in spawned processes ahead of the database (pipeline/pool.py), in spool order.

A process that dies on a message (killed, out of memory, a crash in C) is a shunt with
the reason for that message, never a lost message or a dead worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailgate.app import Daemon
from mailgate.pipeline.pool import DIED, PreparePool, pool_size
from mailgate.pipeline.prepare import Prepared, Settings, prepare
from mailgate.spool import Envelope, Spool
from tests.harness import (
    load,
    message,
    offline,
    running,
    spawned_children,
    tickets,
    wait_until,
    write_config,
)

SMTP = Envelope(source="smtp", rcpt_tos=("support@example.test",))
KILL = b"X-Test-Kill-Parser: yes"


def dying_prepare(raw: bytes, settings: Settings) -> Prepared:
    """prepare(), but the process dies on a marked message (a module-level function: the
    spawned processes import it by name)."""
    if KILL in raw:
        os._exit(70)
    return prepare(raw, settings)


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


# one process beside the worker is the default on two cores
@pytest.mark.parametrize(("processes", "kill_at"), [(2, 7), (1, 12)])
def test_the_pool_parses_in_order_and_a_dying_process_shunts_only_its_message(
    tmp_path, processes, kill_at
):
    cfg = load(write_config(tmp_path))
    engine, spool, worker = offline(cfg)
    worker.pipeline.pool = PreparePool(processes, fn=dying_prepare)
    for raw in _messages(20, kill_at=kill_at):
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


def test_the_daemon_starts_its_parse_processes_with_the_worker_and_ends_them_on_stop(tmp_path):
    before = spawned_children()
    cfg = load(write_config(tmp_path, worker_extra="parse_processes = 2\n"))
    with running(cfg) as d:
        # no mail yet: the processes are up before the first batch needs them
        ours = wait_until(
            lambda: len(spawned_children() - before) == 2 and spawned_children() - before, 30
        )
        d.send(message(message_id="<first@example.com>"))
        wait_until(lambda: len(tickets(d.engine)) == 1, 30, "the first ticket")
        assert spawned_children() - before == ours  # the same processes after the first batch
    assert not ours & spawned_children()


def test_a_reload_keeps_running_parse_processes_unless_their_number_changed(tmp_path):
    cfg = load(write_config(tmp_path, worker_extra="parse_processes = 1\n"))
    daemon = Daemon(cfg)
    first = daemon._pipeline(cfg)
    assert first.pool is not None
    try:
        assert os.getpid() not in [f.result(timeout=60) for f in first.pool.start()]
        assert daemon._pipeline(cfg, first).pool is first.pool
        other = load(write_config(tmp_path / "2", worker_extra="parse_processes = 0\n"))
        replaced = daemon._pipeline(other, first).pool
        assert replaced is not None and replaced is not first.pool and replaced.processes == 0
    finally:
        first.pool.close()


def test_pool_size_leaves_the_worker_its_core():
    assert pool_size(None) == (os.cpu_count() or 1) - 1
    assert pool_size(0) == 0 and pool_size(3) == 3


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody reaped (this machine's init may not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_a_parse_process_ends_when_the_worker_process_is_killed():
    """A SIGKILLed daemon leaves no parse process behind waiting for work forever."""
    code = (
        "import time; from mailgate.pipeline.pool import PreparePool; pool = PreparePool(1); "
        "print(pool.start()[0].result(), flush=True); time.sleep(120)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        assert not _gone(child)
    finally:
        proc.kill()
        proc.wait()
    wait_until(lambda: _gone(child), 30, "the parse process to exit after its parent")
