#!/usr/bin/env python3
"""Instructions per message in the drain, counted by valgrind: a figure the load does not move.

    python bench/instructions.py --corpus DIR          # DIR/eml/*.eml, as bench/ingest.py
    python bench/instructions.py --corpus DIR -n 500   # its first 500 messages

On this shared machine the drain's rate and CPU per message move by a third from run to
run (docs/performance.md), so a change worth 3% cannot be seen in them. The number of
instructions run can: `valgrind --tool=callgrind` counts them the same whatever else the
machine does (a repeat of a run here differed by 0.1%). This runs bench/ingest.py's drain
(the daemon's batch size and parse processes, SQLite WAL + FULL) twice under callgrind,
side by side, with PYTHONHASHSEED fixed: once filling the spool, starting the parse
processes and draining it, once the same without the drain. The difference, divided by
the messages, is the drain's cost per message:
  - the worker's process (the worker's thread, the spool's remover, the pool's threads),
    with what of it the SQLite statements (`sqlite3` cursor calls, the library's C code
    under them), the commits, the unpickling of the parse results and the cyclic
    collector take (inclusive costs of those C functions, from callgrind_annotate);
  - the parse processes (every child process; the migration both runs start cancels out).

Only user-space instructions count: the kernel's work (fsync, file creation and removal)
is not in them, and neither are cache misses; the rates are bench/ingest.py's. Needs
valgrind (Debian's package `valgrind`); a run of 2,000 messages takes about 3 minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_dir  # noqa: E402

# C functions whose inclusive cost is shown (callgrind_annotate's name -> what it is)
PARTS = {
    "Modules/_sqlite/cursor.c:_pysqlite_query_execute": "SQLite statements (execute, executemany)",
    "Modules/_sqlite/connection.c:pysqlite_connection_commit": "SQLite commits",
    "Modules/_pickle.c:load": "unpickling the parse results",
    "Modules/gcmodule.c:gc_collect_main": "the cyclic collector",
}


def inner(corpus: Path, n: int, drain: bool, agents: bool) -> None:
    """One measured process: fill the spool, start the parse processes, drain if asked."""
    from bench.ingest import setup, start_pool
    from mailgate.spool import Envelope

    files = sorted((corpus / "eml").glob("*.eml"))[:n]
    engine, spool, worker = setup("", agents)
    for f in files:
        spool.put(f.read_bytes(), Envelope(source="pipe", queue="support"))
    start_pool(worker, None)
    if drain:
        while worker.process_batch().handled:
            pass
    worker.spool.flush()
    worker.pipeline.close()
    engine.dispose()


def _total(out: Path, wait_s: float = 120.0) -> int:
    """The instructions a callgrind output file counted (its `summary:` line). A child can
    outlive the run's main process (multiprocessing's resource tracker ends when it sees
    the main one gone), so its file is waited for."""
    deadline = time.monotonic() + wait_s
    while True:
        for line in out.read_text(errors="replace").splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
        if time.monotonic() > deadline:
            raise SystemExit(f"{out}: no summary line after {wait_s:.0f} s (valgrind died?)")
        time.sleep(0.5)


def _parts(out: Path) -> dict[str, int]:
    """Inclusive instructions of the PARTS functions in one callgrind output file."""
    listing = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = dict.fromkeys(PARTS, 0)
    for line in listing.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S+)", line)
        if m is None:
            continue
        name = m[2]
        for key in PARTS:  # the outermost entry only: a recursive one ends in 'N
            if name.endswith(key):
                found[key] = max(found[key], int(m[1].replace(",", "")))
    return found


def measure(corpus: Path, n: int, agents: bool, work: Path) -> dict[str, dict[str, int]]:
    """Both runs side by side; per run, the worker's process and its children's totals."""
    procs = {}
    for drain in (False, True):
        out = work / ("drain" if drain else "base")
        out.mkdir()
        cmd = [
            "valgrind", "--tool=callgrind", "--trace-children=yes",
            f"--callgrind-out-file={out}/cg.%p", sys.executable, __file__, "--inner",
            "--corpus", str(corpus), "-n", str(n),
        ] + (["--drain"] if drain else []) + (["--agents"] if agents else [])  # fmt: skip
        env = os.environ | {"PYTHONHASHSEED": "0"}
        log = (out / "valgrind.log").open("w")
        procs[drain] = (subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log), out)
    results = {}
    for drain, (proc, out) in procs.items():
        if proc.wait() != 0:
            raise SystemExit(f"run failed ({proc.returncode}): see {out}/valgrind.log")
        mine = out / f"cg.{proc.pid}"
        children = [f for f in out.glob("cg.*") if f != mine]
        results["drain" if drain else "base"] = {
            "worker": _total(mine),
            "children": sum(_total(f) for f in children),
        } | _parts(mine)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True, help="directory with eml/*.eml")
    ap.add_argument("-n", type=int, default=2000, help="its first N messages (default 2000)")
    ap.add_argument("--agents", action="store_true", help="configure an agent: notifications too")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--drain", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        inner(args.corpus, args.n, args.drain, args.agents)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind not found: apt-get install valgrind")
    n = min(args.n, len(list((args.corpus / "eml").glob("*.eml"))))
    r = measure(args.corpus, n, args.agents, scratch_dir("mg-instructions-"))
    base, drain = r["base"], r["drain"]

    def per_msg(key: str) -> float:
        return (drain[key] - base[key]) / n

    print(f"corpus: {n} messages; instructions per message in the drain (valgrind callgrind)")
    print(f"worker's process            {per_msg('worker'):12,.0f}")
    for key, what in PARTS.items():
        print(f"  of it {what:40} {per_msg(key):12,.0f}")
    print(f"parse processes             {per_msg('children'):12,.0f}")
    print(f"all                         {per_msg('worker') + per_msg('children'):12,.0f}")


if __name__ == "__main__":
    main()
