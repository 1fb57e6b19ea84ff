#!/usr/bin/env python3
"""What routing rules cost: the pure evaluation per message, and the whole drain
(spool -> DB -> outbox) with the SOP rules in the arrival queue against the same drain
without rules, beside the bare floor (shared/bench/floor.py) in the same run.

    python bench/rules.py [--corpus DIR] [-n 2000]

The SOP rules are the shipped ones (config/queues/support.toml), with "sales" standing in
for the cancellation queue the test config does not have. Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_dir  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))

import ingest  # noqa: E402

from mailgate.parse.message import parse  # noqa: E402
from mailgate.queues.rules import evaluate  # noqa: E402
from mailgate.spool import Envelope  # noqa: E402
from tests.harness import load, offline, write_config  # noqa: E402

SOP_RULES = (
    (ROOT / "config" / "queues" / "support.toml")
    .read_text()
    .split("[[rules]]", 1)[1]
    .split("# Pull this queue's mail", 1)[0]
    .replace('queue = "cancellation"', 'queue = "sales"')
)
RULES = "\n[[rules]]" + SOP_RULES


def drain(files: list[Path], rules: bool) -> tuple[float, float, int]:
    tmp = scratch_dir("mg-rules-")
    cfg = load(write_config(tmp, agents_toml="", queue_extra={"support": RULES} if rules else None))
    engine, spool, worker = offline(cfg)
    for f in files:
        spool.put(f.read_bytes(), Envelope(source="pipe", queue="support"))
    t, c = time.perf_counter(), time.process_time()
    r = worker.drain()
    elapsed, cpu = time.perf_counter() - t, time.process_time() - c
    with engine.connect() as conn:
        moved = conn.exec_driver_sql("SELECT count(*) FROM tickets WHERE queue != 'support'")
        n_moved = int(moved.scalar_one())
    assert r.stored == len(files), r
    return len(files) / elapsed, cpu / len(files) * 1000, n_moved


def _shared_bench() -> Path:
    """shared/bench beside the checkout, or beside the worktrees' parent."""
    for d in (ingest.SHARED_BENCH, ROOT.parent.parent / "shared" / "bench"):
        if d.exists():
            return d
    return ingest.SHARED_BENCH


def floor(corpus: Path) -> dict:
    db = scratch_dir("mg-floor-") / "floor.db"
    cmd = [sys.executable, str(_shared_bench() / "floor.py"), str(corpus), str(db)]
    cmd += ["--journal", "wal", "--sync", "full", "--autoreply", "new"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("-n", type=int, default=2000)
    args = ap.parse_args()
    corpus = args.corpus or ingest.generate(scratch_dir("mg-corpus-"), args.n)
    files = sorted((corpus / "eml").glob("*.eml"))
    print(f"corpus: {len(files)} messages; load average {os.getloadavg()[0]:.2f}")

    rules = load(write_config(scratch_dir("mg-bench-"), queue_extra={"support": RULES}))
    support = rules.queue("support")
    parsed = [parse(f.read_bytes()) for f in files]
    t = time.process_time()
    hits = sum(bool(evaluate(support.rules, p).hits) for p in parsed)
    per = (time.process_time() - t) / len(parsed) * 1e6
    print(f"evaluate {len(support.rules)} SOP rules: {per:.1f} us CPU/message ({hits} matched)")

    for with_rules in (False, True, False, True):
        rate, cpu, moved = drain(files, with_rules)
        label = "with the SOP rules" if with_rules else "without rules     "
        print(f"drain {label}: {rate:7.1f} msgs/s, {cpu:.2f} ms CPU/message, {moved} moved")
    f = floor(corpus)
    rate = f.get("msgs_per_s") or f.get("rate") or f
    print(f"floor (WAL + FULL, ack row per new ticket): {json.dumps(rate)}")
    print(f"load average after: {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()
