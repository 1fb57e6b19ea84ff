#!/usr/bin/env python3
"""Several daemons on one durable PostgreSQL: messages/s with one and with two, and the
sweeps at 100,000 and 1,000,000 open tickets (docs/scaling.md, docs/performance.md).

    .venv/bin/python bench/scaling.py                       # generates the 2,000 corpus
    .venv/bin/python bench/scaling.py --corpus DIR --sizes 100000,1000000
    .venv/bin/python bench/scaling.py --skip-sweeps

A throw-away PostgreSQL cluster from tests/servers.py with fsync, synchronous_commit and
full_page_writes on (durable, as in production), over TCP on loopback.

- one daemon: its spool holds the whole corpus; a worker process drains it
  (parse, thread, store, one acknowledgement row per new ticket; one transaction per batch);
- two daemons: two worker processes, each with its own spool holding half the corpus
  (alternate messages), draining at once into one database; the rate is the corpus over
  the time from the first start to the last end;
- the bare floor (shared/bench/floor.py, SQLite, sync FULL, one ack per new ticket) on the
  same corpus in the same run, and the load average;
- the sweeps: bench/sweeps.py's scenario (generated set-based with INSERT ... SELECT) on
  the same durable cluster.

Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_dir  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))

from mailgate.db import engine as db  # noqa: E402
from mailgate.spool import Envelope, Spool  # noqa: E402
from tests.harness import load, offline, write_config  # noqa: E402

# the shared yardsticks: beside the checkout, or beside the worktrees' directory
SHARED_BENCH = next(
    (p for p in (ROOT.parent / "shared" / "bench", ROOT.parents[1] / "shared" / "bench")
     if p.exists()),
    ROOT.parent / "shared" / "bench",
)  # fmt: skip


def drain_child(config: str) -> None:
    """In a child process: drain this daemon's spool; print start, end, counts as JSON."""
    logging.basicConfig(level=logging.WARNING)
    _, _, worker = offline(load(Path(config)))
    t0 = time.time()
    r = worker.drain()
    counts = {"stored": r.stored, "duplicates": r.duplicates, "shunted": r.shunted}
    print(json.dumps({"start": t0, "end": time.time(), "retried": r.retried, **counts}))


def node(root: Path, url: str, files: list[Path]) -> Path:
    cfg = load(write_config(root, database_url=url, agents_toml=""))
    spool = Spool(cfg.spool_dir)
    for f in files:
        spool.put(f.read_bytes(), Envelope(source="pipe", queue="support"))
    return cfg.path


def daemons(url: str, files: list[Path], n: int) -> dict:
    db.connect(url).dispose()  # migrate before the clock starts
    tmp = scratch_dir("mg-scaling-")
    configs = [node(tmp / f"d{i}", url, files[i::n]) for i in range(n)]
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--drain-child", str(c)],
            stdout=subprocess.PIPE,
            env={**os.environ, "MG_TEST_SECRET_UNSET_OK": "bench-secret-0123456789abcdef"},
        )
        for c in configs
    ]
    outs = [json.loads(p.communicate()[0].decode().strip().splitlines()[-1]) for p in procs]
    elapsed = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    return {
        "per_s": len(files) / elapsed,
        "elapsed": elapsed,
        "stored": sum(o["stored"] for o in outs),
        "duplicates": sum(o["duplicates"] for o in outs),
        "shunted": sum(o["shunted"] for o in outs),
        "retried": sum(o["retried"] for o in outs),
    }


def floor(corpus: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="mg-floor-") as tmp:
        out = subprocess.run(
            [sys.executable, str(SHARED_BENCH / "floor.py"), str(corpus), f"{tmp}/floor.db",
             "--autoreply", "new"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    figures = json.loads(out.strip().splitlines()[-1])
    return float(figures["ingest_msgs_per_s"])


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", default="")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--skip-sweeps", action="store_true")
    ap.add_argument("--drain-child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.drain_child:
        drain_child(args.drain_child)
        return
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("MG_TEST_SECRET_UNSET_OK", "bench-secret-0123456789abcdef")
    os.environ.setdefault("MG_BENCH_SECRET", "bench-secret-0123456789abcdef")
    from ingest import generate  # bench/ingest.py

    from tests.servers import Postgres

    corpus = Path(args.corpus) if args.corpus else generate(scratch_dir("mg-bench-") / "gc", 2000)
    files = sorted((corpus / "eml").glob("*.eml"))
    server = Postgres(durable=True)
    try:
        print(f"load average before: {loadavg()}")
        print(f"floor (shared/bench/floor.py, SQLite FULL): {floor(corpus):.1f} msgs/s")
        for n in (1, 2):
            url = server.create_database(f"scaling_{n}")
            r = daemons(url, files, n)
            print(
                f"{n} daemon(s) on durable PostgreSQL: {r['per_s']:.1f} msgs/s "
                f"({len(files)} in {r['elapsed']:.1f} s; stored {r['stored']}, "
                f"duplicates {r['duplicates']}, retried {r['retried']}, shunted {r['shunted']})"
            )
            server.drop_database(f"scaling_{n}")
        print(f"floor again: {floor(corpus):.1f} msgs/s")
        print(f"load average: {loadavg()}")
        if not args.skip_sweeps:
            from sweeps import bench_size  # bench/sweeps.py

            for size in (int(s) for s in args.sizes.split(",") if s):
                name = f"sweeps_{size}"
                url = server.create_database(name)
                with tempfile.TemporaryDirectory(prefix="mg-sweeps-") as tmp:
                    bench_size(url, size, Path(tmp))
                server.drop_database(name)
                print(f"load average: {loadavg()}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
