#!/usr/bin/env python3
"""End to end over SMTP with the shipped config: intake -> worker -> outbox -> relay.

    python bench/e2e.py                       # 2,000 generated messages, 1/4/16 connections
    python bench/e2e.py --connections 4 --rate 50    # paced: 50 messages/s
    python bench/e2e.py --governor "ack_per_queue_minute = 0"   # a [governor] override

Each run: a fresh data directory with config/ copied (relay pointed at an aiosmtpd sink
from tests/servers.py that stamps each arrival, listener on a free port), `mailgate run`
as its own process, N client connections sending the corpus in order over SMTP (RCPT TO
support@example.test). Printed: messages/s until every outbox row reached the relay (held
rows aside, counted), the worker's drain rate in the same run (spool empty), 250 ->
acknowledgement at the relay p50/p99, held rows, the floor (/work/shared/bench/floor.py)
on the same corpus and the load average. Numbers, not assertions: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Connection, create_engine, text  # noqa: E402

from bench import ingest  # noqa: E402
from bench.ingest import generate, pct  # noqa: E402
from bench.scratch import scratch_dir  # noqa: E402
from tests.servers import SmtpSink, free_port  # noqa: E402

# shared/ beside the checkout (or beside the folder of worktrees)
SHARED_BENCH = next(
    (p / "shared" / "bench" for p in ROOT.parents if (p / "shared" / "bench").is_dir()),
    ingest.SHARED_BENCH,
)
ingest.SHARED_BENCH = SHARED_BENCH


class StampingSink(SmtpSink):
    """The test sink, with the arrival time of each Message-ID."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.in_reply_to: dict[str, str] = {}
        super().__init__()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        head = envelope.original_content.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        mid = re.search(r"^Message-ID:\s*(\S+)", head, re.I | re.M)
        irt = re.search(r"^In-Reply-To:\s*(\S+)", head, re.I | re.M)
        if mid:
            self.arrived[mid.group(1)] = time.monotonic()
            if irt:
                self.in_reply_to[mid.group(1)] = irt.group(1)
        return reply


def shipped_config(
    tmp: Path, relay_port: int, listen_port: int, governor: str, database_url: str = ""
) -> Path:
    cfg = tmp / "config"
    shutil.copytree(ROOT / "config", cfg)
    (tmp / "templates").mkdir()
    if (ROOT / "templates").exists():
        shutil.copytree(ROOT / "templates", tmp / "templates", dirs_exist_ok=True)
    text = (cfg / "mailgate.toml").read_text()
    text = re.sub(r'(?m)^host = ""', 'host = "127.0.0.1"', text, count=1)
    text = re.sub(r"(?m)^port = 25$", f"port = {relay_port}", text, count=1)
    text = re.sub(r"(?m)^port = 2525$", f"port = {listen_port}", text, count=1)
    text = re.sub(r'(?m)^log_level = "info"', 'log_level = "warning"', text, count=1)
    if database_url:
        text = re.sub(r"(?m)^# database_url = .*$", f'database_url = "{database_url}"', text)
    for line in filter(None, (s.strip() for s in governor.split(";"))):
        key = line.split("=", 1)[0].strip()
        text = re.sub(rf"(?m)^{key} = .*$", line, text, count=1)
    (cfg / "mailgate.toml").write_text(text)
    return cfg / "mailgate.toml"


def message_id(raw: bytes) -> str:
    m = re.search(rb"^Message-ID:\s*(\S+)", raw.split(b"\n\n", 1)[0], re.I | re.M)
    return m.group(1).decode() if m else ""


def send_all(
    port: int, files: list[Path], connections: int, rate: float
) -> tuple[dict[str, float], float]:
    """Send in corpus order over `connections` clients; the 250 time of each Message-ID."""
    work: queue.Queue[tuple[int, Path] | None] = queue.Queue()
    for item in enumerate(files):
        work.put(item)
    for _ in range(connections):
        work.put(None)
    acked: dict[str, float] = {}
    t0 = time.monotonic()

    def client() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            while (item := work.get()) is not None:
                i, path = item
                if rate:
                    time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
                raw = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                smtp.sendmail("customer@bench.example", ["support@example.test"], raw)
                acked[message_id(raw)] = time.monotonic()

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return acked, t0


def one_run(
    files: list[Path], connections: int, rate: float, governor: str, database_url: str = ""
) -> dict:
    tmp = scratch_dir("mg-e2e-")
    sink = StampingSink()
    listen = free_port()
    path = shipped_config(tmp, sink.port, listen, governor, database_url)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(path), "run"],
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "daemon.log", "wb"),  # noqa: SIM115
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                smtplib.SMTP("127.0.0.1", listen, timeout=2).quit()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        db = _database(tmp, database_url)
        spool_dir = tmp / "var" / "spool"
        acked, t0 = send_all(listen, files, connections, rate)
        t_sent = time.monotonic()
        worker_done = e2e_done = 0.0
        while time.monotonic() - t_sent < 600:
            if not worker_done and not any((spool_dir / "incoming").glob("*")):
                worker_done = time.monotonic()
            pending = db.execute(text("select count(*) from outbox where status = 'pending'")).one()
            if worker_done and pending[0] == 0:
                e2e_done = time.monotonic()
                break
            time.sleep(0.05)
        counts = dict(db.execute(text("select status, count(*) from outbox group by status")).all())
        kinds = dict(db.execute(text("select kind, count(*) from outbox group by kind")).all())
        acks_sql = "select message_id, created_at from outbox where kind = 'ack'"
        written = dict(db.execute(text(acks_sql)).all())
        db.close()
        acks = list(written)
    finally:
        daemon.terminate()
        daemon.wait(30)
        sink.stop()
    lat = [
        sink.arrived[a] - acked[sink.in_reply_to[a]]
        for a in acks
        if a in sink.arrived and sink.in_reply_to.get(a) in acked
    ]
    # split the latency: 250 -> ack row written (the worker), row written -> relay (sender)
    mono = time.time() - time.monotonic()
    at = {a: _epoch(w) - mono for a, w in written.items()}
    by_worker = [
        at[a] - acked[sink.in_reply_to[a]] for a in acks if sink.in_reply_to.get(a) in acked
    ]
    by_sender = [sink.arrived[a] - at[a] for a in acks if a in sink.arrived]
    n = len(files)
    return {
        "connections": connections,
        "rate": rate or "max",
        "intake_per_s": n / (t_sent - t0),
        "drain_per_s": n / (worker_done - t0) if worker_done else float("nan"),
        "end_to_end_per_s": n / (e2e_done - t0) if e2e_done else float("nan"),
        "ack_p50_s": pct(lat, 0.5),
        "ack_p99_s": pct(lat, 0.99),
        "acks_measured": len(lat),
        "ack_written_p50_s": pct(by_worker, 0.5),
        "ack_written_p99_s": pct(by_worker, 0.99),
        "ack_sender_p50_s": pct(by_sender, 0.5),
        "ack_sender_p99_s": pct(by_sender, 0.99),
        "outbox": counts,
        "kinds": kinds,
        "relay_got": len(sink.arrived),
        "load_avg": os.getloadavg()[0],
    }


def _database(tmp: Path, database_url: str) -> Connection:
    """A connection to the daemon's database: the URL given, else its SQLite file."""
    if not database_url:  # config/load.py names the file in data_dir
        db_file = min((tmp / "var").glob("mailgate.db*"), key=lambda p: len(p.name))
        database_url = f"sqlite:///{db_file}"
    # autocommit: every poll reads what the daemon committed since the last one
    return create_engine(database_url, isolation_level="AUTOCOMMIT").connect()


def _epoch(stored: str | datetime) -> float:
    """An outbox created_at (UTC; SQLite holds a string) in seconds since the epoch."""
    when = datetime.fromisoformat(str(stored))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def floor(corpus: Path) -> dict:
    script = SHARED_BENCH / "floor.py"
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(
            [
                sys.executable,
                str(script),
                str(corpus),
                f"{d}/floor.db",
                "--journal",
                "wal",
                "--sync",
                "full",
                "--autoreply",
                "new",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--connections", default="1,4,16")
    ap.add_argument("--rate", type=float, default=0.0, help="messages/s to send at (0: flat out)")
    ap.add_argument("--governor", default="", help='"key = value; ..." over the shipped [governor]')
    ap.add_argument(
        "--postgres-durable",
        action="store_true",
        help="the daemon on a private PostgreSQL (tests/servers.py), fsync and synchronous_commit"
        " on; a fresh database per run",
    )
    args = ap.parse_args()
    pg = None
    if args.postgres_durable:
        from tests.servers import Postgres

        pg = Postgres(durable=True)
        print(f"PostgreSQL {pg!r}: fsync, synchronous_commit, full_page_writes on")
    corpus = args.corpus or generate(scratch_dir("mg-corpus-"), args.n)
    files = sorted((corpus / "eml").glob("*.eml"))
    gov = args.governor or "shipped"
    db_name = "durable PostgreSQL" if pg else "SQLite"
    print(f"corpus: {len(files)} messages; cores {os.cpu_count()}; governor {gov}; {db_name}")
    for c in (int(x) for x in args.connections.split(",")):
        url = pg.create_database(f"e2e_{c}_{os.getpid()}") if pg else ""
        r = one_run(files, c, args.rate, args.governor, url)
        print(
            f"connections {r['connections']:2d} rate {r['rate']}: "
            f"intake {r['intake_per_s']:.1f}/s, "
            f"worker drain {r['drain_per_s']:.1f}/s, end to end {r['end_to_end_per_s']:.1f}/s "
            f"({r['end_to_end_per_s'] / r['drain_per_s']:.0%} of drain); ack 250->relay "
            f"p50 {r['ack_p50_s']:.2f} s p99 {r['ack_p99_s']:.2f} s "
            f"over {r['acks_measured']} acks (250->row written p50 {r['ack_written_p50_s']:.2f}"
            f" p99 {r['ack_written_p99_s']:.2f} s, row->relay p50 {r['ack_sender_p50_s']:.2f}"
            f" p99 {r['ack_sender_p99_s']:.2f} s); "
            f"outbox {r['outbox']} kinds {r['kinds']}; relay got {r['relay_got']}; "
            f"load {r['load_avg']:.2f}"
        )
    f = floor(corpus)
    print(f"floor: {json.dumps(f)}; load {os.getloadavg()[0]:.2f}")
    if pg:
        pg.stop()


if __name__ == "__main__":
    main()
