"""The IMAP poller under failures: Dovecot restarted or killed mid-drain, mailgate itself
SIGKILLed between steps, a stop request mid-drain. Real Dovecot, real SQLite, real spool.

What is asserted, at each level:
- server: every message ends in Archive exactly once (after = "move") or flagged \\Seen
  (after = "seen"); nothing stays behind in INBOX;
- spool: every Message-ID is there at least once (zero lost). A message can be there twice
  when the failure hit between its spool write and its MOVE/flag/checkpoint: the duplicates
  are counted and printed, and bounded by the number of failures times the batch size;
- tickets: the worker turns the spool into exactly one article per Message-ID (zero
  duplicated), because it dedupes re-fetched mail.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from mailgate.db import engine as db
from mailgate.pgp.keyring import Keyrings
from mailgate.pipeline.steps import Pipeline
from mailgate.pipeline.worker import Worker
from mailgate.pollers.imap.poller import Poller
from mailgate.pollers.imap.run import make_pollers
from mailgate.spool import Envelope, Spool
from tests import harness
from tests.harness import wait_until
from tests.integration.test_imap import (
    PASSWORD,
    LoopThread,
    fast_kwargs,
    folder_ids,
    message,
    spool_message_ids,
)
from tests.servers import Dovecot

pytestmark = pytest.mark.slow
USER = "support@example.test"
BIG = 200_000


class SlowSpool(Spool):
    """A spool on a slow disk: each put() takes `delay` longer (widens the failure windows)."""

    def __init__(self, root: Path, delay: float):
        super().__init__(root)
        self.delay = delay

    def put(self, raw: bytes, envelope: Envelope) -> str:
        time.sleep(self.delay)
        return super().put(raw, envelope)


def fill(d: Dovecot, n: int, *, big_every: int = 8) -> list[str]:
    """APPEND n messages of mixed sizes (every big_every-th is 200 KB); return Message-IDs."""
    c = d.login(USER)
    try:
        for i in range(n):
            c.append("INBOX", message(i, size=BIG if i % big_every == 0 else 300 + 37 * (i % 50)))
    finally:
        c.logout()
    return [f"<m-{i}@customer.example>" for i in range(n)]


def config_for(tmp_path: Path, d: Dovecot, **imap: Any) -> Any:
    """A full mailgate config (worker included) whose support queue polls d."""
    path = harness.write_config(tmp_path)
    table = {
        "host": d.host,
        "port": d.port,
        "tls": "none",
        "user": USER,
        "password_file": "../password",
        "timeout_seconds": 5,
        "batch_size": 20,
        **imap,
    }
    if "after" not in imap:
        table["move_to"] = "Archive"
    lines = [f"{k} = {v!r}".replace("'", '"') for k, v in table.items()]
    q = path.parent / "queues" / "support.toml"
    q.write_text(q.read_text() + "\n[imap]\n" + "\n".join(lines) + "\n")
    (path.parent / "password").write_text(PASSWORD)
    return harness.load(path)


def assert_spool_complete(spool: Spool, expected: list[str], failures: int, batch: int) -> int:
    ids = spool_message_ids(spool)
    missing = sorted(set(expected) - set(ids))
    assert not missing, f"{len(missing)} message(s) lost: {missing[:5]}"
    assert set(ids) == set(expected)
    dups = sum(n - 1 for n in ids.values())
    assert dups <= failures * batch, (dups, failures)
    return dups


def assert_one_article_each(cfg: Any, engine: Engine, spool: Spool, n: int) -> None:
    r = Worker(cfg, engine, spool, Pipeline(cfg, keyrings=Keyrings())).drain()
    print(f"worker: stored {r.stored}, duplicates dropped {r.duplicates}, shunted {r.shunted}")
    assert r.shunted == 0 and r.stored == n
    assert harness.article_count(engine) == n


def run_with_restarts(
    d: Dovecot, poller: Poller, expected: int, restarts: int, every: int
) -> tuple[int, list[float]]:
    """Restart (graceful) or kill+start Dovecot each time `every` more messages were taken."""
    downtimes = []
    done = 0
    for k in range(restarts):
        target = min(expected - 1, (k + 1) * every)
        try:
            wait_until(
                lambda t=target, c=k + 1: poller.taken >= t and poller.connections >= c,
                120,
                f"{target} messages taken on connection {k + 1}",
            )
        except TimeoutError as e:  # say what the server was doing meanwhile
            raise TimeoutError(f"{e}; taken {poller.taken}; dovecot log:\n{d.log()}") from e
        t0 = time.monotonic()
        if k % 2:
            d.kill()
            d.start()
        else:
            d.restart(graceful=True)
        downtimes.append(time.monotonic() - t0)
        done += 1
    return done, downtimes


@pytest.mark.parametrize("after", ["move", "seen"])
def test_dovecot_restarts_mid_drain_lose_nothing(
    tmp_path: Path, dovecot_factory: Callable[..., Dovecot], after: str
) -> None:
    d = dovecot_factory()
    n = 300
    expected = fill(d, n)
    cfg = config_for(tmp_path, d, **({"after": "seen"} if after == "seen" else {}))
    engine = db.connect(cfg.database_url)
    spool = SlowSpool(cfg.spool_dir, delay=0.02)
    lt = LoopThread()
    stop = lt.event()
    (p,) = make_pollers(cfg, spool, engine, stop, **fast_kwargs())
    fut = lt.start(p.run())
    try:
        restarts, downtimes = run_with_restarts(d, p, n, restarts=5, every=45)

        def drained() -> bool:
            if after == "move":
                return folder_ids(d, USER, "INBOX") == {}
            return all(b"\\Seen" in f for f in folder_ids(d, USER, "INBOX").values())

        wait_until(lambda: p.taken >= n and drained(), 120, "the mailbox drained")
    finally:
        lt.set(stop)
        fut.result(timeout=20)
        lt.close()
    box = folder_ids(d, USER, "Archive" if after == "move" else "INBOX")
    assert sorted(box) == sorted(expected)  # each exactly once on the server
    dups = assert_spool_complete(spool, expected, restarts, 20)
    print(
        f"\nafter={after}: {n} messages, {restarts} Dovecot restarts/kills "
        f"(down {min(downtimes):.1f}-{max(downtimes):.1f}s), {p.connections} connections; "
        f"spool: 0 lost, {dups} re-fetched duplicate(s); last error: {p.last_error}"
    )
    assert p.connections >= restarts + 1
    assert_one_article_each(cfg, engine, spool, n)


def test_stop_mid_drain_leaves_nothing_half_taken(
    tmp_path: Path, dovecot_factory: Callable[..., Dovecot]
) -> None:
    """Stop while a backlog is being taken: what the spool has is moved, the rest untouched."""
    d = dovecot_factory()
    expected = fill(d, 200)
    cfg = config_for(tmp_path, d)
    engine = db.connect(cfg.database_url)
    spool = SlowSpool(cfg.spool_dir, delay=0.02)
    lt = LoopThread()
    stop = lt.event()
    (p,) = make_pollers(cfg, spool, engine, stop, **fast_kwargs())
    fut = lt.start(p.run())
    try:
        wait_until(lambda: p.taken >= 57, 60, "part of the backlog")
        t0 = time.monotonic()
        lt.set(stop)
        fut.result(timeout=20)
        took = time.monotonic() - t0
    finally:
        lt.close()
    spooled = set(spool_message_ids(spool))
    archived = set(folder_ids(d, USER, "Archive"))
    inbox = set(folder_ids(d, USER, "INBOX"))
    print(f"\nstop mid-drain: {len(spooled)} taken, {len(inbox)} left, stopped in {took:.2f}s")
    assert spooled == archived  # every spooled message got its MOVE
    assert not spooled & inbox  # nothing both taken and left
    assert spooled | inbox == set(expected)  # and nothing else vanished
    assert 57 <= len(spooled) < len(expected)
    # the rest is taken on the next start, from the checkpoint
    (p2,) = make_pollers(cfg, Spool(cfg.spool_dir), engine, asyncio.Event())
    assert p2.poll_once() == len(inbox)
    assert set(spool_message_ids(spool)) == set(expected)


CRASHY_POLLER = """
import sys, time
from mailgate.config import load as config
from mailgate.db import engine as db
from mailgate.pollers.imap.run import make_pollers
from mailgate.spool import Spool
import asyncio

class SlowSpool(Spool):
    def put(self, raw, envelope):
        time.sleep(0.01)
        return super().put(raw, envelope)

cfg = config.load(sys.argv[1])
engine = db.connect(cfg.database_url)
(p,) = make_pollers(cfg, SlowSpool(cfg.spool_dir), engine, asyncio.Event())
print("ready", flush=True)
p.serve_forever()
"""


def test_mailgate_killed_between_steps_loses_nothing(
    tmp_path: Path, dovecot_factory: Callable[..., Dovecot]
) -> None:
    """SIGKILL the poller process at random moments (mid FETCH, after put, before MOVE, before
    the checkpoint...) eight times; a final run finishes the job. Zero lost, one article each."""
    d = dovecot_factory()
    n = 250
    expected = fill(d, n)
    cfg = config_for(tmp_path, d)
    db.connect(cfg.database_url).dispose()  # migrations done before the first kill
    script = tmp_path / "crashy.py"
    script.write_text(CRASHY_POLLER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    spool = Spool(cfg.spool_dir)
    kills = 0
    rng_delays = [0.35, 0.6, 0.45, 0.8, 0.5, 0.7, 0.4, 0.9]
    for delay in rng_delays:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(cfg.path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        kills += 1
        if not folder_ids(d, USER, "INBOX"):
            break
    before_final = sum(spool_message_ids(spool).values())
    engine = db.connect(cfg.database_url)
    (p,) = make_pollers(cfg, spool, engine, asyncio.Event())
    p.poll_once()
    assert folder_ids(d, USER, "INBOX") == {}
    assert sorted(folder_ids(d, USER, "Archive")) == sorted(expected)
    dups = assert_spool_complete(spool, expected, kills, 20)
    print(
        f"\n{kills} SIGKILLs of the poller process; {before_final} spool files before the "
        f"final run; 0 lost, {dups} duplicate(s) in the spool"
    )
    assert_one_article_each(cfg, engine, spool, n)


def test_restart_during_idle_reconnects_and_picks_up(
    tmp_path: Path, dovecot_factory: Callable[..., Dovecot]
) -> None:
    """Dovecot restarts while the poller idles: it reconnects and new mail still arrives."""
    d = dovecot_factory()
    cfg = config_for(tmp_path, d)
    engine = db.connect(cfg.database_url)
    spool = Spool(cfg.spool_dir)
    lt = LoopThread()
    stop = lt.event()
    (p,) = make_pollers(cfg, spool, engine, stop, **fast_kwargs())
    fut = lt.start(p.run())
    try:
        wait_until(lambda: p.connections == 1, 10, "first connection")
        assert p.idling.wait(10), "never entered IDLE"
        for k in range(3):
            if k == 1:
                d.kill()  # a crash: no BYE, the socket just dies
                d.start()
            else:
                d.restart(graceful=True)
            wait_until(lambda k=k: p.connections == k + 2, 20, "reconnect")
            assert p.idling.wait(10), "never back in IDLE"
            t0 = time.monotonic()
            d.append(USER, message(k))
            wait_until(
                lambda k=k: f"<m-{k}@customer.example>" in spool_message_ids(spool),
                20,
                "pickup after restart",
            )
            print(
                f"\nrestart {k + 1}: picked up {(time.monotonic() - t0) * 1000:.0f} ms after APPEND"
            )
            wait_until(lambda: not folder_ids(d, USER, "INBOX"), 20, "the MOVE")
    finally:
        lt.set(stop)
        fut.result(timeout=20)
        lt.close()
    assert sorted(spool_message_ids(spool)) == [f"<m-{k}@customer.example>" for k in range(3)]
