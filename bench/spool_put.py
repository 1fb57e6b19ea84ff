#!/usr/bin/env python3
"""Concurrent spool writers: puts/s and directory fsyncs per put (the spool's group commit).

    python bench/spool_put.py [--corpus DIR] [--writers 1,4,16] [-n 400] [--root CHECKOUT]

N threads put copies of one corpus message into a fresh spool, as concurrent SMTP sessions
and pollers do. `--root` runs another checkout's spool.py (e.g. main's, unpacked with
`git archive`) for a comparison in the same minute. Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scratch import scratch_dir  # noqa: E402  (this checkout's, whatever --root runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", type=Path, help="a directory with eml/*.eml (default: a small one)")
    ap.add_argument("--writers", default="1,4,16")
    ap.add_argument("-n", type=int, default=400, help="puts per run")
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = ap.parse_args()
    sys.path.insert(0, str(args.root))
    from mailgate.spool import Envelope, Spool

    files = sorted((args.corpus / "eml").glob("*.eml")) if args.corpus else []
    raw = files[0].read_bytes() if files else b"Subject: x\r\n\r\n" + b"body line\r\n" * 200
    for writers in (int(w) for w in args.writers.split(",")):
        spool = Spool(scratch_dir("mg-spool-put-"))
        per = args.n // writers

        def work(spool: Spool = spool, per: int = per) -> None:
            for _ in range(per):
                spool.put(raw, Envelope(source="smtp"))

        threads = [threading.Thread(target=work) for _ in range(writers)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed, n = time.perf_counter() - t0, per * writers
        group = getattr(spool, "incoming_sync", None)
        fsyncs = f"{group.fsyncs / n:.2f}" if group is not None else "1 (no group commit)"
        print(
            f"{writers:2d} writers: {n / elapsed:7.1f} puts/s, directory fsyncs per put "
            f"{fsyncs}; load {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
