"""Leases (store/leases.py) on SQLite and a real PostgreSQL, and the IMAP poller behind one
(pollers/imap/lease.py) against a real Dovecot: one daemon polls a mailbox at a time, and
another takes it over when the holder stops or dies."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, update

from mailgate.config import load as config_mod
from mailgate.db import engine as db
from mailgate.pollers.imap.lease import LeaseLost, MailboxLease
from mailgate.pollers.imap.poller import Poller
from mailgate.pollers.imap.run import make_pollers
from mailgate.spool import Spool
from mailgate.store import leases
from tests.harness import wait_until
from tests.integration.test_imap import fast_kwargs, imap_table, message, write_config
from tests.servers import Dovecot

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    if request.param == "sqlite":
        url = "sqlite:///" + str(tmp_path / "db.sqlite")
    else:
        url = request.getfixturevalue("pg_url")
    eng = db.connect(url)
    request.addfinalizer(eng.dispose)
    return eng


def test_take_renew_expire_release(any_engine: Engine) -> None:
    e = any_engine
    assert leases.take(e, "imap:x", "a", T0, 30)
    assert not leases.take(e, "imap:x", "b", T0 + timedelta(seconds=29), 30)
    assert leases.take(e, "imap:x", "a", T0 + timedelta(seconds=20), 30)  # renewed to 50 s
    assert not leases.take(e, "imap:x", "b", T0 + timedelta(seconds=45), 30)
    assert leases.take(e, "imap:x", "b", T0 + timedelta(seconds=51), 30)  # a stopped renewing
    assert not leases.take(e, "imap:x", "a", T0 + timedelta(seconds=52), 30)
    (h,) = leases.holdings(e, "imap:")
    assert (h.holder, h.acquired_at) == ("b", T0 + timedelta(seconds=51))
    leases.release(e, "imap:x", "a")  # not a's: nothing happens
    assert leases.holdings(e)[0].holder == "b"
    leases.release(e, "imap:x", "b")
    assert leases.holdings(e) == []
    assert leases.take(e, "imap:x", "a", T0 + timedelta(seconds=53), 30)


def _race(engine: Engine, name: str, now: datetime, n: int = 6) -> list[str]:
    """n threads take `name` at once; who got it."""
    start = threading.Barrier(n)
    won: list[str] = []

    def race(who: str) -> None:
        start.wait()
        if leases.take(engine, name, who, now, 30):
            won.append(who)

    threads = [threading.Thread(target=race, args=(f"n{i}",)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won


def test_one_holder_when_many_race(pg_url: str) -> None:
    engine = db.connect(pg_url)
    try:
        for round_ in range(10):
            name = f"imap:race-{round_}"
            assert len(_race(engine, name, T0)) == 1
            # and once it ran out, again exactly one of them takes it
            assert len(_race(engine, name, T0 + timedelta(seconds=31))) == 1
    finally:
        engine.dispose()


def test_keep_raises_when_another_daemon_took_the_lease(any_engine: Engine) -> None:
    ticks = iter(range(0, 10_000, 10))
    lease = MailboxLease(any_engine, "q/u@h:143/INBOX", "a", 30, monotonic=lambda: next(ticks))
    assert lease.acquire() and lease.held
    with any_engine.begin() as conn:  # as if a's clock stalled past the end and b took it
        conn.execute(update(leases.leases).values(holder="b"))
    with pytest.raises(LeaseLost):
        lease.keep()
    assert not lease.held


def _config(tmp_path: Path, server: Dovecot, user: str, url: str, node: str, takeover: float):
    root = tmp_path / node
    cfg = write_config(root, {"support": imap_table(server, user)})
    main = cfg.path
    main.write_text(
        main.read_text()
        + f'database_url = "{url}"\n[database]\nnode = "{node}"\n'
        + f"mailbox_takeover_seconds = {takeover}\n"
    )
    return config_mod.load(main)


def _start(poller: Poller) -> threading.Thread:
    t = threading.Thread(target=poller.serve_forever, daemon=True)
    t.start()
    return t


def _stop(poller: Poller, thread: threading.Thread) -> None:
    poller.halt.set()
    thread.join(20)
    assert not thread.is_alive()


def _pollers(tmp_path: Path, server: Dovecot, user: str, url: str, nodes: list[str]):
    out = []
    for node in nodes:
        cfg = _config(tmp_path, server, user, url, node, takeover=2)
        (p,) = make_pollers(cfg, Spool(cfg.spool_dir), db.connect(url), None, **fast_kwargs())  # type: ignore[arg-type]
        out.append(p)
    return out


def test_two_daemons_one_mailbox_one_poller_then_takeover(
    tmp_path: Path, dovecot: Dovecot, imap_user: str, pg_url: str
) -> None:
    engine = db.connect(pg_url)
    a, b = _pollers(tmp_path, dovecot, imap_user, pg_url, ["node-a", "node-b"])
    ta = _start(a)
    wait_until(lambda: a.idling.is_set(), 20, "node-a polling")
    tb = _start(b)
    dovecot.append(imap_user, message(1))
    wait_until(lambda: a.taken == 1, 20, "node-a taking the message")
    wait_until(lambda: b.lease is not None and not b.lease.held, 5)
    threading.Event().wait(b.lease.retry_seconds * 3)  # node-b looked (and found a holding it)
    assert (b.connections, b.taken) == (0, 0)
    _stop(a, ta)  # a clean stop gives the lease back: node-b takes over at its next look
    dovecot.append(imap_user, message(2))
    wait_until(lambda: b.taken == 1, 20, "node-b taking over")
    assert a.taken == 1 and b.connections >= 1
    (h,) = leases.holdings(engine, "imap:")
    assert h.holder == "node-b"
    _stop(b, tb)
    engine.dispose()


def test_a_dead_holders_mailbox_is_taken_over_when_its_lease_runs_out(
    tmp_path: Path, dovecot: Dovecot, imap_user: str, pg_url: str
) -> None:
    engine = db.connect(pg_url)
    (b,) = _pollers(tmp_path, dovecot, imap_user, pg_url, ["node-b"])
    assert b.lease is not None
    with engine.begin() as conn:  # what a SIGKILLed daemon leaves: a lease nobody renews
        conn.execute(
            insert(leases.leases).values(
                name=b.lease.name,
                holder="node-dead",
                expires_at=datetime.now(UTC) + timedelta(hours=1),
                acquired_at=datetime.now(UTC),
            )
        )
    dovecot.append(imap_user, message(1))
    tb = _start(b)
    threading.Event().wait(b.lease.retry_seconds * 3)
    assert (b.connections, b.taken) == (0, 0)
    with engine.begin() as conn:  # the hour passes
        conn.execute(update(leases.leases).values(expires_at=datetime.now(UTC)))
    wait_until(lambda: b.taken == 1, 20, "node-b taking over the dead node's mailbox")
    _stop(b, tb)
    assert leases.holdings(engine, "imap:") == []  # given back on the clean stop
    engine.dispose()
