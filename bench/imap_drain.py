"""IMAP intake figures against a throw-away Dovecot: drain rate, idle-poll cost, IDLE latency.

    .venv/bin/python bench/imap_drain.py [--messages 3000] [--appends 50]

Prints:
- drain: messages/s from a mailbox of N messages into a durable spool (fsync per message),
  after = "move" and after = "seen", next to a bare FETCH of the same mailbox (no spool);
- idle poll: the cost of a poll that finds nothing new in a big mailbox (checkpointed UID
  range search), against an empty mailbox;
- IDLE pickup: from the start of an APPEND (on an open connection) to the spool write
  returning, p50/p99 over --appends messages.

No assertions: numbers to compare runs, recorded in docs/imap.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailgate.config import load as config_mod  # noqa: E402
from mailgate.config.model import Config  # noqa: E402
from mailgate.db import engine as db  # noqa: E402
from mailgate.pollers.imap.poller import Poller  # noqa: E402
from mailgate.pollers.imap.run import make_pollers  # noqa: E402
from mailgate.spool import Spool  # noqa: E402
from tests.servers import Dovecot  # noqa: E402

USER = "support@example.test"


def message(i: int, size: int) -> bytes:
    line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"
    body = (line * (size // len(line) + 1))[:size]
    return (
        f"From: Customer {i} <c{i}@customer.example>\r\nTo: {USER}\r\n"
        f"Subject: bench {i}\r\nMessage-ID: <bench-{i}-{time.time_ns()}@customer.example>\r\n"
        "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\n" + body
    ).encode()


def size_of(i: int) -> int:
    """Mixed sizes: mostly 1-8 KB, every 25th 200 KB (attachments)."""
    return 200_000 if i % 25 == 0 else 1000 + (i * 7919) % 7000


def fill(d: Dovecot, n: int, folder: str = "INBOX") -> tuple[float, int]:
    c = d.login(USER)
    t0 = time.perf_counter()
    total = 0
    for i in range(n):
        raw = message(i, size_of(i))
        total += len(raw)
        c.append(folder, raw)
    c.logout()
    return time.perf_counter() - t0, total


def write_config(root: Path, d: Dovecot, **imap: object) -> Config:
    cfg = root / "config"
    (cfg / "queues").mkdir(parents=True, exist_ok=True)
    (cfg / "mailgate.toml").write_text(f'[mailgate]\ndata_dir = "{root / "var"}"\n')
    (cfg / "password").write_text(d.password)
    table = {
        "host": d.host,
        "port": d.port,
        "tls": "none",
        "user": USER,
        "password_file": "../password",
        **imap,
    }
    lines = [f"{k} = {v!r}".replace("'", '"') for k, v in table.items()]
    (cfg / "queues" / "support.toml").write_text(
        'name = "support"\naddresses = ["support@example.test"]\n[imap]\n' + "\n".join(lines)
    )
    return config_mod.load(cfg / "mailgate.toml")


def one_poller(root: Path, d: Dovecot, **imap: object) -> tuple[Poller, Spool]:
    shutil.rmtree(root, ignore_errors=True)
    cfg = write_config(root, d, **imap)
    spool = Spool(cfg.spool_dir)
    engine = db.connect(cfg.database_url)
    (p,) = make_pollers(cfg, spool, engine, asyncio.Event())
    return p, spool


def bare_fetch(d: Dovecot, batch: int = 50) -> float:
    c = d.login(USER)
    c.select_folder("INBOX", readonly=True)
    t0 = time.perf_counter()
    uids = c.search(["ALL"])
    for i in range(0, len(uids), batch):
        c.fetch(uids[i : i + batch], ["BODY.PEEK[]"])
    took = time.perf_counter() - t0
    c.logout()
    return took


def bench_drain(d: Dovecot, work: Path, n: int) -> None:
    took, total = fill(d, n)
    print(f"fill: {n} messages, {total / 1e6:.1f} MB APPENDed in {took:.1f}s")
    t = bare_fetch(d)
    print(f"bare UID FETCH BODY.PEEK[] (batches of 50, no spool): {n / t:,.0f} msg/s")

    p, spool = one_poller(work / "seen", d, after="seen")
    t0 = time.perf_counter()
    taken = p.poll_once()
    t = time.perf_counter() - t0
    print(f'drain after = "seen": {taken} messages in {t:.2f}s = {taken / t:,.0f} msg/s')
    assert spool.pending() == n
    # a poll that finds nothing: the checkpointed UID range search, n messages still there
    runs = []
    for _ in range(20):
        t0 = time.perf_counter()
        assert p.poll_once() == 0
        runs.append(time.perf_counter() - t0)
    big = statistics.median(runs)

    # reset flags and drain again with MOVE
    c = d.login(USER)
    c.select_folder("INBOX")
    c.remove_flags(c.search(["ALL"]), [b"\\Seen"])
    c.logout()
    p, spool = one_poller(work / "move", d, move_to="Archive")
    t0 = time.perf_counter()
    taken = p.poll_once()
    t = time.perf_counter() - t0
    print(f'drain after = "move": {taken} messages in {t:.2f}s = {taken / t:,.0f} msg/s')
    runs = []
    for _ in range(20):
        t0 = time.perf_counter()
        assert p.poll_once() == 0
        runs.append(time.perf_counter() - t0)
    empty = statistics.median(runs)
    print(
        f"idle poll (connect+login+SELECT+UID SEARCH+LOGOUT, nothing new): "
        f"{big * 1000:.1f} ms with {n} messages kept (seen), {empty * 1000:.1f} ms on an "
        "empty folder"
    )


def bench_idle(d: Dovecot, work: Path, appends: int) -> None:
    p, spool = one_poller(work / "idle", d, move_to="Archive")
    spooled_at: list[float] = []
    arrived = threading.Event()

    def on_spooled() -> None:
        spooled_at.append(time.perf_counter())
        arrived.set()

    p.on_spooled = on_spooled
    loop = asyncio.new_event_loop()
    th = threading.Thread(target=loop.run_until_complete, args=(p.run(),), daemon=True)
    th.start()
    while p.connections < 1:
        time.sleep(0.01)
    time.sleep(0.5)
    c = d.login(USER)
    lat = []
    for i in range(appends):
        arrived.clear()
        t0 = time.perf_counter()
        c.append("INBOX", message(i, 2000))
        if not arrived.wait(10):
            raise SystemExit(f"append {i} not picked up within 10 s")
        lat.append(spooled_at[-1] - t0)
        time.sleep(0.05)
    c.logout()
    p.halt.set()
    th.join(10)
    lat.sort()
    p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
    print(
        f"IDLE pickup (APPEND start -> spool write returned), n={len(lat)}: "
        f"p50 {statistics.median(lat) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"min {lat[0] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
    )


def bench_raw_idle(d: Dovecot, appends: int) -> None:
    """The server's own share: APPEND start -> EXISTS on a bare imapclient IDLE connection."""
    idler = d.login(USER)
    idler.select_folder("INBOX")
    c = d.login(USER)
    lat = []
    for i in range(appends):
        idler.idle()
        t0 = time.perf_counter()
        c.append("INBOX", message(i, 2000))
        while not any(r[1:2] == (b"EXISTS",) for r in idler.idle_check(timeout=10)):
            pass
        lat.append(time.perf_counter() - t0)
        idler.idle_done()
        time.sleep(0.05)
    c.logout()
    idler.logout()
    lat.sort()
    print(
        f"bare IDLE (no mailgate; APPEND start -> EXISTS), n={len(lat)}: "
        f"p50 {statistics.median(lat) * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
    )


def bench_spool(work: Path, n: int) -> None:
    """The spool's share of the drain: durable put() of the same mix, no IMAP."""
    from mailgate.spool import Envelope

    spool = Spool(work / "spool-only")
    raws = [message(i, size_of(i)) for i in range(n)]
    t0 = time.perf_counter()
    for raw in raws:
        spool.put(raw, Envelope(source="bench"))
    t = time.perf_counter() - t0
    print(f"spool.put alone (fsync file + envelope + dir): {n / t:,.0f} msg/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--appends", type=int, default=50)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="mg-bench-imap."))
    d = Dovecot()
    try:
        print(f"Dovecot {d.host}:{d.port}; spool and SQLite under {work}")
        bench_drain(d, work, args.messages)
        bench_spool(work, min(args.messages, 1000))
        bench_idle(d, work, args.appends)
        bench_raw_idle(d, min(args.appends, 20))
    finally:
        d.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
