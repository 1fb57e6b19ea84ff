#!/usr/bin/env python3
"""The drain against a database that already holds many tickets (default a million).

    python bench/big_db.py --corpus DIR [--tickets 1000000] [--parse-processes N]

Builds the history set-based in SQLite (one INSERT ... SELECT per table from a recursive
counter: tickets, their queue rows, one inbound article each with its dedupe key and
Message-ID in thread_refs), then drains the corpus through the worker and prints
messages/s, CPU per message, peak RSS and the threading check. The old tickets take the
ids -N+1 .. 0, so the corpus's new tickets still start at 1 and its subject tags
(`[support #n]`) name them as in `bench/ingest.py`. Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import ingest  # noqa: E402

from mailgate.spool import Envelope  # noqa: E402

NOW = "2026-01-01 00:00:00.000000"
BUILD = [
    """WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i - 1 FROM n WHERE i > :low)
    INSERT INTO tickets (id, title, requester_addr, requester_name, queue, status, type,
      priority, sticky, tier, category, complexity, created_at, updated_at, closed_at)
    SELECT i, 'old ticket ' || i, 'old' || -i || '@example.invalid', '', 'support',
      'closed', 'email', 50, 0, 'L1', '', '', :now, :now, :now FROM n""",
    "INSERT INTO ticket_queues (ticket_id, queue) SELECT id, 'support' FROM tickets",
    """INSERT INTO articles (ticket_id, kind, dedupe_key, message_id, from_addr, from_name,
      to_addrs, cc_addrs, subject, body_text, new_text, author, auto, verdict, defects,
      created_at)
    SELECT id, 'inbound', printf('%064d', -id), '<old' || -id || '@example.invalid>',
      requester_addr, '', '[]', '[]', title, 'Hello, an old question.', '', '', 0, '{}',
      '[]', :now FROM tickets""",
    """INSERT INTO thread_refs (message_id, ticket_id)
    SELECT message_id, ticket_id FROM articles""",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--parse-processes", type=int, default=None)
    args = ap.parse_args()
    files = sorted((args.corpus / "eml").glob("*.eml"))
    engine, spool, worker = ingest.setup("", procs=args.parse_processes)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        for sql in BUILD:
            conn.exec_driver_sql(
                sql.replace(":low", str(-args.tickets + 1)).replace(":now", f"'{NOW}'")
            )
    print(f"built {args.tickets} old tickets in {time.perf_counter() - t0:.1f} s")
    for f in files:
        spool.put(f.read_bytes(), Envelope(source="pipe", queue="support"))
    rss_before = ingest.peak_rss_mib()
    ingest.start_pool(worker, args.parse_processes)  # as the daemon: with the worker
    d = ingest.measured_drain(worker, len(files))
    kids = ", ".join(f"{mib:.0f}" for mib in d["parse_rss"]) or "none"
    print(
        f"drain over {args.tickets} old tickets: {d['drain_per_s']:.1f} msgs/s, "
        f"{d['cpu_ms_per_msg']:.2f} ms CPU per message (stored {d['stored']}, "
        f"shunted {d['shunted']}); peak RSS: worker {ingest.peak_rss_mib():.0f} MiB (before "
        f"the drain {rss_before:.0f}), parse processes {kids} MiB; {ingest.loadavg()}"
    )
    with engine.connect() as conn:
        pairs = conn.exec_driver_sql(
            "SELECT message_id, ticket_id FROM articles WHERE ticket_id > 0"
        ).all()
    (args.corpus / "pairs.json").write_text(json.dumps([list(p) for p in pairs]))
    out = os.popen(
        f"{sys.executable} {ingest.SHARED_BENCH / 'check_threads.py'} "
        f"{args.corpus / 'manifest.json'} {args.corpus / 'pairs.json'}"
    ).read()
    print("threading: " + out.strip())


if __name__ == "__main__":
    main()
