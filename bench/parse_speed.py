"""Print parse-stage timings (mean/p50/p99/max ms per message) over mail corpora; no assertions.

Usage: python3 bench/parse_speed.py [EXTRA_DIR ...]
Always measures tests/data/corpus (the copied real-world corpus) and, when present,
/work/shared/corpus; each EXTRA_DIR (e.g. /tmp/gc from
`python3 /work/shared/bench/gen_corpus.py /tmp/gc -n 2000`) is searched for *.eml
(also in an `eml/` subfolder). Also prints the bare stdlib compat32 and mail-parser
figures on the same files for comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import time
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailgate.parse.limits import ParseRejected  # noqa: E402
from mailgate.parse.message import parse  # noqa: E402

DEFAULT_DIRS = [ROOT / "tests" / "data" / "corpus", Path("/work/shared/corpus")]


def load(directory: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of every .eml file under directory."""
    return [
        (str(p.relative_to(directory)), p.read_bytes()) for p in sorted(directory.rglob("*.eml"))
    ]


def ours(raw: bytes) -> None:
    """The parse stage; a rejection is a normal outcome."""
    with contextlib.suppress(ParseRejected):
        parse(raw)


def stdlib_compat32(raw: bytes) -> None:
    """Bare stdlib parse, no decoding (the floor)."""
    BytesParser(policy=policy.compat32).parsebytes(raw)


def mail_parser(raw: bytes) -> None:
    """mail-parser 4.x, as the issue first proposed."""
    import mailparser

    with contextlib.suppress(Exception):
        mailparser.parse_from_bytes(raw)


def measure(files: list[tuple[str, bytes]], fn: Callable[[bytes], None]) -> tuple[list[float], str]:
    """Per-file seconds (best of 3 runs) and the slowest file's name."""
    times: list[float] = []
    slowest, worst = "", -1.0
    for name, raw in files:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            fn(raw)
            best = min(best, time.perf_counter() - start)
        times.append(best)
        if best > worst:
            slowest, worst = name, best
    return times, slowest


def report(label: str, files: list[tuple[str, bytes]], fn: Callable[[bytes], None]) -> None:
    """Print one line of figures."""
    times, slowest = measure(files, fn)
    ordered = sorted(times)
    ms = [t * 1000 for t in ordered]
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(
        f"  {label:<16} n={len(ms):5d}  mean {statistics.mean(ms):7.3f} ms  "
        f"p50 {statistics.median(ms):7.3f}  p99 {p99:8.3f}  max {ms[-1]:8.3f}  "
        f"({len(ms) / sum(ordered):7.0f} msg/s)  slowest: {slowest}"
    )


def main() -> None:
    """Measure every corpus given."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", type=Path, help="extra corpus directories")
    ap.add_argument("--no-compare", action="store_true", help="only measure mailgate.parse.message")
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)  # mail-parser logs warnings on hostile input
    dirs = [d for d in DEFAULT_DIRS if d.is_dir()]
    for extra in args.dirs:
        dirs.append(extra / "eml" if (extra / "eml").is_dir() else extra)
    for directory in dirs:
        files = load(directory)
        if not files:
            continue
        print(f"{directory} ({len(files)} files, {sum(len(b) for _, b in files) / 1e6:.1f} MB)")
        report("mailgate.parse.message", files, ours)
        if not args.no_compare:
            report("stdlib compat32", files, stdlib_compat32)
            report("mail-parser", files, mail_parser)


if __name__ == "__main__":
    main()
