#!/usr/bin/env python3
"""Where the worker's CPU goes in a drain: per pipeline step and per batch phase.

    python bench/worker_steps.py --corpus DIR     # DIR/eml/*.eml, as bench/ingest.py
    python bench/worker_steps.py -n 2000          # a generated corpus

The drain of bench/ingest.py (the daemon's batch size and parse processes, SQLite WAL +
FULL), with each step of `pipeline/steps.STEPS` and each phase of a batch (claiming and
reading the next batch, waiting for its parsing, the batch-wide reads, the batch's
deferred writes, commit, handing the files to the spool's remover) timed in the worker's
thread (`time.thread_time`). Printed: CPU ms per message for each, the worker thread's
total and what no step or phase accounts for (the loop, the transaction's begin), the
CPU of the process's other threads (the spool's remover, the pool's feeders) and of the
parse processes, each beside the floor of the same run and the load average. Timing a
step costs about 1 µs; the figures are for finding where the time goes, the rates are
bench/ingest.py's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import generate  # noqa: E402  (light: the parse processes import this)
from bench.scratch import scratch_dir  # noqa: E402


def _timed(acc: Counter[str], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[name] += time.thread_time() - t

    return timed


def _thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process (by its native id)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:
            continue  # ended meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        out[tid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def run(files: list[Path], agents: bool = False) -> tuple[Counter[str], dict[str, float]]:
    import threading

    from bench.ingest import proc_cpu, setup, start_pool
    from mailgate import heap
    from mailgate.pipeline import steps
    from mailgate.pipeline import worker as worker_mod
    from mailgate.spool import Envelope
    from tests.harness import spawned_children

    engine, spool, worker = setup("", agents)
    for f in files:
        spool.put(f.read_bytes(), Envelope(source="pipe", queue="support"))
    start_pool(worker, None)
    acc: Counter[str] = Counter()
    steps.STEPS = tuple((name, _timed(acc, f"step {name}", fn)) for name, fn in steps.STEPS)
    worker_mod.flush = _timed(acc, "batch: deferred writes", worker_mod.flush)
    w: Any = worker
    w._claim = _timed(acc, "batch: claim + read the next", w._claim)
    w._prepared = _timed(acc, "batch: wait for its parsing", w._prepared)
    w.pipeline.read_ahead = _timed(acc, "batch: batch-wide reads", w.pipeline.read_ahead)
    spool.done = _timed(acc, "batch: spool done", spool.done)
    dialect: Any = engine.dialect
    dialect.do_commit = _timed(acc, "batch: commit", dialect.do_commit)
    process = _timed(acc, "messages: the steps' loop", w.pipeline.process)
    w.pipeline.process = process
    kids = {pid: proc_cpu(pid) for pid in spawned_children()}
    threads_before = _thread_cpu()
    me = str(threading.get_native_id())
    t0 = time.thread_time()
    while worker.process_batch().handled:
        pass
    acc["worker thread, all"] = time.thread_time() - t0
    steps_total = sum(v for k, v in acc.items() if k.startswith("step "))
    acc["messages: the steps' loop"] -= steps_total  # what process() spends around them
    threads_after = _thread_cpu()
    others = sum(threads_after[t] - threads_before.get(t, 0.0) for t in threads_after if t != me)
    parse = sum(proc_cpu(pid) - kids.get(pid, 0.0) for pid in spawned_children())
    worker.spool.flush()
    worker.pipeline.close()
    heap.thaw()  # start_pool froze start-up's objects, as measured_drain thaws them
    return acc, {"other threads": others, "parse processes": parse}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", type=Path, help="directory with eml/*.eml")
    ap.add_argument("-n", type=int, default=2000, help="messages to generate (default 2000)")
    ap.add_argument("--agents", action="store_true", help="configure an agent: notifications too")
    args = ap.parse_args()
    corpus = args.corpus or generate(scratch_dir("mg-corpus-"), args.n)
    files = sorted((corpus / "eml").glob("*.eml"))
    from bench.ingest import floor

    rate = floor(corpus)["ingest_msgs_per_s"]
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"corpus: {len(files)} messages; floor {rate:.1f} msgs/s; load {' '.join(load)}")
    acc, rest = run(files, args.agents)
    n = len(files)
    total = acc.pop("worker thread, all")
    print(f"{'worker thread, all':34} {total / n * 1000:7.3f} ms/msg")
    for name, secs in sorted(acc.items(), key=lambda kv: -kv[1]):
        print(f"  {name:32} {secs / n * 1000:7.3f}")
    unaccounted = (total - sum(acc.values())) / n * 1000
    print(f"  {'(the batch loop, begin, outcomes)':32} {unaccounted:7.3f}")
    for name, secs in rest.items():
        print(f"{name:34} {secs / n * 1000:7.3f} ms/msg")
    print(f"load after: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")


if __name__ == "__main__":
    main()
