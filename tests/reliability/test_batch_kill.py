"""kill -9 between the batch giving its rows ids and the commit: nothing lost, nothing doubled.

A child process runs one optimistic batch and SIGKILLs itself at its flush, before the
rows it held back (with the ids it gave them, store/ids.py) are written, or after they
are written and before the commit. Then a worker drains the same spool: every message
is stored once and the database is the one a drain without the kill makes (on SQLite
with the same ids; on PostgreSQL, where the dead transaction used up sequence numbers,
ids by rank).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.harness import load, message, offline, write_config
from tests.integration.test_batch_ids import NOW, PIPE, compared

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import datetime
    from pathlib import Path
    from mailgate.store import batch
    from tests.harness import load, offline

    point = sys.argv[2]
    engine, spool, worker = offline(load(Path(sys.argv[1])))
    worker.pipeline.clock = lambda: datetime.fromisoformat(sys.argv[3])
    write_held = batch.write_held

    def killed(conn, state, count_again=True):
        print(sum(len(r) for stmts in state.held.values() for r in stmts.values()), flush=True)
        if point == "after":
            write_held(conn, state, count_again)
        os.kill(os.getpid(), signal.SIGKILL)

    batch.write_held = killed
    worker.process_batch()
    """
)


def _conversation() -> list[bytes]:
    """Eight new tickets, each followed up twice (by reference, then by the reply chain)."""
    out = []
    for i in range(8):
        first = f"<k{i}@example.com>"
        sender = f"c{i}@example.com"
        out.append(message(message_id=first, sender=sender, subject=f"Problem {i}"))
        out.append(message(message_id=f"<k{i}b@example.com>", sender=sender,
                           in_reply_to=first, body="More.\n"))  # fmt: skip
        out.append(message(message_id=f"<k{i}c@example.com>", sender=sender,
                           in_reply_to=f"<k{i}b@example.com>", body="Again.\n",
                           references=f"{first} <k{i}b@example.com>"))  # fmt: skip
    return out


def _setup(root: Path, url: str, raws: list[bytes]):  # type: ignore[no-untyped-def]
    cfg_path = write_config(
        root, database_url=url, batch_size=64, agents_toml="", worker_extra="parse_processes = 0\n"
    )  # fmt: skip (no agents: held)
    engine, spool, worker = offline(load(cfg_path))
    worker.pipeline.clock = lambda: NOW
    for raw in raws:
        spool.put(raw, PIPE)
    return cfg_path, engine, spool, worker


@pytest.mark.parametrize("point", ["before", "after"])
@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_kill_between_the_ids_and_the_commit_loses_and_doubles_nothing(
    tmp_path, request, database, point
):
    raws = _conversation()
    urls = {"killed": "", "clean": ""}
    if database == "postgres":
        pg = request.getfixturevalue("postgres")
        for side in urls:
            urls[side] = pg.create_database(f"kill_{side}_{point}_{tmp_path.name[-6:]}".lower())
    cfg_path, engine, spool, worker = _setup(tmp_path / "killed", urls["killed"], raws)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(cfg_path), point, NOW.isoformat()],
        cwd=ROOT,
        capture_output=True,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    assert int(child.stdout.split()[0]) > 20  # the batch's rows were held when it died
    assert spool.pending() == len(raws)  # nothing was committed, nothing removed

    r = worker.drain()

    assert (r.stored, r.duplicates, r.shunted) == (len(raws), 0, 0)
    assert spool.pending() == 0
    _, clean_engine, _, clean = _setup(tmp_path / "clean", urls["clean"], raws)
    clean.drain()
    after_kill = compared(engine, clean_engine, ranked=database == "postgres")
    assert len(after_kill["tickets"]) == 8 and len(after_kill["articles"]) == len(raws)
