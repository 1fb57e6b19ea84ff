#!/usr/bin/env python3
"""Throughput and latency of spool -> worker -> DB -> outbox on a fixed generated corpus.

    python bench/ingest.py                      # generates the corpus with gen_corpus.py
    python bench/ingest.py --corpus DIR         # DIR/eml/*.eml (+ DIR/manifest.json)
    python bench/ingest.py --db postgresql+psycopg://...   # same on PostgreSQL

Two runs on the same corpus, each in a fresh data directory:
  drain:     the spool is filled first, then the worker drains it (pure processing rate)
  streaming: a producer writes to the spool (fsync per message, as a source does before it
             acknowledges) while the worker runs; latency = spool put -> DB commit
Prints messages/s, CPU per message (the worker's process and its parse processes),
SQL statements per message, p50/p99 latency, peak RSS, the threading check against the
generator's ground truth, and the bare floor (shared/bench/floor.py, modern parser, WAL +
FULL) measured in the same run with the load average beside each. Durability is the
daemon's: SQLite WAL + synchronous=FULL, one fsync'ed spool file per message. Numbers,
not assertions: record them in docs/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_dir  # noqa: E402

# only light imports up here: each spawned parse process imports this module again as its
# __main__ (as the daemon's do the console script), so heavy ones are made where they are used
from mailgate.spool import Envelope  # noqa: E402

# the peers' generator and floor: $MAILGATE_SHARED_BENCH, else the nearest shared/bench above
# the checkout (../shared/bench from /work/main, ../../shared/bench from a worktree)
SHARED_BENCH = Path(
    os.environ.get("MAILGATE_SHARED_BENCH")
    or next(
        (str(p / "shared" / "bench") for p in ROOT.parents if (p / "shared" / "bench").is_dir()),
        str(ROOT.parent / "shared" / "bench"),
    )
)


def generate(out: Path, n: int) -> Path:
    gen = SHARED_BENCH / "gen_corpus.py"
    if not gen.exists():
        sys.exit(f"no corpus given and {gen} not found: pass --corpus DIR")
    subprocess.run(
        [sys.executable, str(gen), str(out), "-n", str(n), "--tag-format", "[support #{n}]"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def cpu_seconds() -> float:
    """CPU of this process and of its ended children (the parse processes, after drain)."""
    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def count_statements(engine) -> list[int]:  # type: ignore[no-untyped-def]
    """A counter of statements sent to the database (an executemany counts once)."""
    from sqlalchemy import event

    n = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*args: object) -> None:
        n[0] += 1

    return n


def setup(  # type: ignore[no-untyped-def]
    db_url: str, agents: bool = False, procs: int | None = None, batch: int | None = None
):
    from mailgate.config.schema import WorkerSettings
    from tests.harness import load, offline, write_config

    tmp = scratch_dir("mg-bench-")
    worker_extra = "" if procs is None else f"parse_processes = {procs}\n"
    # the yardstick's work per message is parse, thread, store, one ack row: no agents to
    # notify unless asked (--agents adds one notification row per message)
    cfg = load(
        write_config(
            tmp,
            database_url=db_url,
            period_hours=24,
            agents_toml=None if agents else "",
            queue_extra={"support": "[agent_mail]\nnotify = true\n"} if agents else None,
            worker_extra=worker_extra,
            batch_size=batch or WorkerSettings().batch_size,  # the daemon's default unless asked
        )
    )
    # the schema made by a first start in another process: the measured one starts as a
    # daemon usually does, on a database at every migration head (alembic not loaded)
    migrate = "import sys; from mailgate.db import engine; engine.connect(sys.argv[1])"
    subprocess.run([sys.executable, "-c", migrate, cfg.database_url], check=True, cwd=ROOT)
    return offline(cfg)


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int | str = "self") -> float:
    """VmHWM: the process's peak resident set so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_pool(worker, procs: int | None) -> None:  # type: ignore[no-untyped-def]
    """Start the parse processes before the drain and wait until they are ready, as the
    daemon starts them with its worker (app.py); then, as the daemon once started, leave
    what start-up made out of the collector's full collections (mailgate/heap.py)."""
    from mailgate import heap
    from mailgate.pipeline.pool import PreparePool, pool_size

    pool = worker.pipeline.pool = PreparePool(pool_size(procs))
    for ready in pool.start():
        ready.result()
    heap.freeze_startup()


def measured_drain(worker, n: int) -> dict:  # type: ignore[no-untyped-def]
    """Drain the spool; CPU of this process and of the parse processes while it ran (their
    start-up before it excluded), peak RSS of each."""
    from mailgate import heap
    from tests.harness import spawned_children

    kids_before = {pid: proc_cpu(pid) for pid in spawned_children()}
    t1, c1 = time.perf_counter(), cpu_seconds()
    totals = [0, 0, 0]
    while (r := worker.process_batch()).handled:
        totals = [a + b for a, b in zip(totals, (r.stored, r.duplicates, r.shunted), strict=True)]
    kids = spawned_children()
    kids_cpu = sum(proc_cpu(pid) - kids_before.get(pid, 0.0) for pid in kids)
    kids_rss = [peak_rss_mib(pid) for pid in kids]
    t_drain, c_drain = time.perf_counter() - t1, cpu_seconds() - c1 + kids_cpu
    worker.spool.flush()
    worker.pipeline.close()
    heap.thaw()  # the next run's start-up is its own
    return {
        "drain_per_s": n / t_drain,
        "cpu_ms_per_msg": c_drain / n * 1000,
        "parse_cpu_ms_per_msg": kids_cpu / n * 1000,
        "parse_rss": kids_rss,
        "stored": totals[0],
        "duplicates": totals[1],
        "shunted": totals[2],
    }


def run_drain(
    files: list[Path],
    db_url: str,
    agents: bool,
    procs: int | None,
    lazy: bool = False,
    batch: int | None = None,
) -> dict:
    engine, spool, worker = setup(db_url, agents, procs, batch)
    t0 = time.perf_counter()
    for f in files:
        spool.put(f.read_bytes(), Envelope(source="pipe", queue="support"))
    t_put = time.perf_counter() - t0
    statements = count_statements(engine)
    from mailgate.store.fast import StatementCount  # the hot path's own statements

    on_cursor = StatementCount.n
    if not lazy:
        start_pool(worker, procs)
    before = peak_rss_mib()
    with contextlib.suppress(OSError):  # the peak from here on: the drain's, not the puts'
        Path("/proc/self/clear_refs").write_text("5")
    drain = measured_drain(worker, len(files))
    return drain | {
        "rss_before_drain": before,
        "statements_per_msg": (statements[0] + StatementCount.n - on_cursor) / len(files),
        "engine": engine,
        "spool_put_per_s": len(files) / t_put,
    }


def run_streaming(
    files: list[Path], db_url: str, agents: bool, procs: int | None, batch: int | None = None
) -> dict:
    from mailgate import heap

    engine, spool, worker = setup(db_url, agents, procs, batch)
    heap.freeze_startup()  # as the daemon once started (its parse processes start lazily here)
    done = threading.Event()

    def produce() -> None:
        for f in files:
            spool.put(f.read_bytes(), Envelope(source="pipe", queue="support"))
        done.set()

    latencies: list[float] = []
    stored = 0
    t0 = time.perf_counter()
    producer = threading.Thread(target=produce)
    producer.start()
    while not (done.is_set() and spool.pending() == 0):
        r = worker.process_batch()
        stored += r.stored + r.duplicates
        latencies += r.latencies
        if not r.handled:
            time.sleep(0.001)
    producer.join()
    elapsed = time.perf_counter() - t0
    worker.pipeline.close()
    heap.thaw()
    return {
        "engine": engine,
        "end_to_end_per_s": len(files) / elapsed,
        "latency_p50_ms": pct(latencies, 0.50) * 1000,
        "latency_p99_ms": pct(latencies, 0.99) * 1000,
        "stored": stored,
    }


def thread_check(engine, corpus: Path) -> dict | None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from mailgate.db.models import Article

    manifest = corpus / "manifest.json"
    checker = SHARED_BENCH / "check_threads.py"
    if not manifest.exists() or not checker.exists():
        return None
    with engine.connect() as conn:
        pairs = [list(r) for r in conn.execute(select(Article.message_id, Article.ticket_id))]
    pairs_file = corpus / "pairs.json"
    pairs_file.write_text(json.dumps(pairs))
    out = subprocess.run(
        [sys.executable, str(checker), str(manifest), str(pairs_file)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def loadavg() -> str:
    return "(load " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + ")"


def floor(corpus: Path) -> dict:
    """The bare floor on the same corpus: stdlib modern parser + sqlite3, WAL + FULL."""
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(
            [sys.executable, str(SHARED_BENCH / "floor.py"), str(corpus), f"{d}/floor.db"]
            + ["--journal", "wal", "--sync", "full", "--autoreply", "new"],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", type=Path, help="directory with eml/*.eml (and manifest.json)")
    ap.add_argument("-n", type=int, default=2000, help="messages to generate (default 2000)")
    ap.add_argument("--db", default="", help="database URL (default: SQLite in a temp dir)")
    ap.add_argument("--agents", action="store_true", help="configure an agent: notifications too")
    ap.add_argument(
        "--parse-processes", type=int, default=None, help="worker.parse_processes (default: cores)"
    )
    ap.add_argument(
        "--no-floor", action="store_true", help="skip the floor (shared/bench/floor.py)"
    )
    ap.add_argument(
        "--batch-size", type=int, default=None, help="worker.batch_size (default: the daemon's, 64)"
    )
    ap.add_argument("--no-streaming", action="store_true", help="drain only")
    ap.add_argument(
        "--lazy-pool",
        action="store_true",
        help="start the parse processes inside the drain's first batch, not before it",
    )
    ap.add_argument(
        "--postgres-durable",
        action="store_true",
        help="start a private PostgreSQL (tests/servers.py) with fsync and synchronous_commit on",
    )
    args = ap.parse_args()
    if args.postgres_durable:
        from tests.servers import Postgres

        pg = Postgres(durable=True)
        args.db = pg.url
        print(f"PostgreSQL {pg!r}: fsync, synchronous_commit, full_page_writes on")
    corpus = args.corpus or generate(scratch_dir("mg-corpus-"), args.n)
    files = sorted((corpus / "eml").glob("*.eml"))
    if not files:
        sys.exit(f"no eml files in {corpus / 'eml'}")
    print(f"corpus: {len(files)} messages from {corpus}")
    print(f"database: {args.db or 'SQLite (WAL, synchronous=FULL)'}; cores: {os.cpu_count()}")
    from mailgate.config.schema import WorkerSettings

    print(f"worker.batch_size: {args.batch_size or WorkerSettings().batch_size}")

    floor_rate = None
    if not args.no_floor and (SHARED_BENCH / "floor.py").exists():
        floor_rate = floor(corpus)["ingest_msgs_per_s"]
        print(f"floor (modern parser, WAL + FULL): {floor_rate:8.1f} msgs/s  {loadavg()}")
    drain = run_drain(
        files, args.db, args.agents, args.parse_processes, args.lazy_pool, args.batch_size
    )
    from sqlalchemy import select

    from mailgate.db.models import OutboxRow

    with drain["engine"].connect() as conn:
        outbox_rows = len(conn.execute(select(OutboxRow.id)).all())
    print(f"spool put (fsync file + dir):  {drain['spool_put_per_s']:8.1f} msgs/s")
    print(
        f"drain spool -> DB -> outbox:   {drain['drain_per_s']:8.1f} msgs/s  "
        f"(stored {drain['stored']}, duplicates {drain['duplicates']}, "
        f"shunted {drain['shunted']}, outbox rows {outbox_rows})"
    )
    print(
        f"  CPU per message in the drain: {drain['cpu_ms_per_msg']:.2f} ms (worker + parse "
        f"processes; of it parse processes {drain['parse_cpu_ms_per_msg']:.2f}); "
        f"{drain['statements_per_msg']:.1f} SQL statements per message  {loadavg()}"
    )
    if floor_rate:
        print(f"  drain / floor: {drain['drain_per_s'] / floor_rate:.2f}x")
    # before the threading check, which reads every article back into this process
    kids = ", ".join(f"{mib:.0f}" for mib in drain["parse_rss"]) or "none"
    print(
        f"peak RSS in the drain: worker {peak_rss_mib():.0f} MiB (peak before it, filling the "
        f"spool: {drain['rss_before_drain']:.0f}); parse processes {kids} MiB"
    )
    check = thread_check(drain["engine"], corpus)
    if check is not None:
        print("threading: " + json.dumps(check))

    if args.no_streaming:
        return
    stream = run_streaming(files, args.db, args.agents, args.parse_processes, args.batch_size)
    print(
        f"streaming put + process:       {stream['end_to_end_per_s']:8.1f} msgs/s  "
        f"latency p50 {stream['latency_p50_ms']:.1f} ms, p99 {stream['latency_p99_ms']:.1f} ms"
    )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
