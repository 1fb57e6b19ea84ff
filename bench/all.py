"""Issue 16's figures in one run, each beside the bare floor and the load average.

    python bench/all.py            # or: make bench

One generated corpus (shared/bench/gen_corpus.py, 2,000 messages) for all of them:
  1. bench/ingest.py: the floor, spool put, drain (msgs/s, CPU ms per message, SQL
     statements per message, peak RSS of the worker and its parse processes, threading
     checked), streaming put + process; SQLite WAL + synchronous=FULL;
  2. the drain again on a private PostgreSQL with fsync and synchronous_commit on;
  3. bench/e2e.py: end to end over SMTP with 1, 4 and 16 connections (the shipped config,
     the daemon as its own process, an SMTP sink as the relay), SQLite;
  4. the same on durable PostgreSQL.
Numbers, not assertions: docs/performance.md records them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.ingest import generate  # noqa: E402
from bench.scratch import scratch_dir  # noqa: E402


def main() -> None:
    corpus = generate(scratch_dir("mg-corpus-"), 2000)
    runs = (
        ["ingest.py"],
        ["ingest.py", "--no-streaming", "--postgres-durable"],
        ["e2e.py", "--connections", "1,4,16"],
        ["e2e.py", "--connections", "1,4,16", "--postgres-durable"],
    )
    for script, *args in runs:
        print(f"\n== bench/{script} {' '.join(args)}", flush=True)
        cmd = [sys.executable, str(HERE / script), "--corpus", str(corpus), *args]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
