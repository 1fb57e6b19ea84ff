#!/usr/bin/env python3
"""Start-up cost of the MTA pipe: `mailgate ingest < msg` beside a bare `python3 -c pass`.

    python bench/pipe_startup.py            # 30 runs of each, alternating
    python bench/pipe_startup.py -n 100
    python bench/pipe_startup.py --tree /tmp/old   # the mailgate package of another checkout

The MTA starts one `mailgate ingest` per message, so its start-up is the pipe's
throughput. Both commands run on the same interpreter, alternately (so load changes hit
both), in a fresh config and spool; each ingest must exit 0. The children run with the
bytecode cache on (as an installed package has it), whatever $PYTHONDONTWRITEBYTECODE
says. Prints median and p90 wall time of each, their ratio (the target is at most 2x), the
imports of one ingest beyond bare python by `-X importtime` (slowest self time first), and
the load average. Numbers, not assertions: record them in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CWD = tempfile.gettempdir()  # not the checkout: `-m mailgate` would find it first
# as installed: bytecode cached (pip compiles on install; the first run here writes it)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
MESSAGE = (
    b"From: Carla Customer <customer@example.com>\r\nTo: support@example.test\r\n"
    b"Subject: my printer is broken\r\nMessage-ID: <bench@example.com>\r\n\r\nIt smokes.\r\n"
)


def write_config(root: Path) -> Path:
    (root / "queues").mkdir(parents=True)
    (root / "queues" / "support.toml").write_text(
        'name = "support"\naddresses = ["support@example.test"]\n'
    )
    path = root / "mailgate.toml"
    path.write_text(f'[mailgate]\ndata_dir = "{root / "var"}"\n')
    return path


def ingest_argv(config: Path, tree: str) -> list[str]:
    """The console script the MTA runs, on this interpreter; `-m mailgate` without one or
    for the package in `tree` (found first through $PYTHONPATH)."""
    script = Path(sys.executable).parent / "mailgate"
    use_script = script.exists() and not tree
    head = [str(script)] if use_script else [sys.executable, "-m", "mailgate"]
    return [*head, "--config", str(config), "ingest"]


def wall(argv: list[str], stdin: bytes) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, capture_output=True, cwd=CWD, env=ENV, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv} exited {done.returncode}: {done.stderr.decode()}")
    return seconds


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def imports(argv: list[str], stdin: bytes) -> dict[str, tuple[int, int]]:
    """module -> (self µs, cumulative µs) of one run, from `-X importtime`."""
    env = dict(ENV, PYTHONPROFILEIMPORTTIME="1")
    done = subprocess.run(argv, input=stdin, capture_output=True, cwd=CWD, env=env, check=False)
    rows = {}
    for line in done.stderr.decode().splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
            rows[name.strip()] = (int(self_us), int(cumulative_us))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=30)
    ap.add_argument("--top", type=int, default=12, help="imports to list")
    ap.add_argument("--tree", default="", help="directory holding another mailgate package")
    args = ap.parse_args()
    if args.tree:
        ENV["PYTHONPATH"] = args.tree
    with tempfile.TemporaryDirectory(prefix="mg-pipe-") as tmp:
        ingest = ingest_argv(write_config(Path(tmp)), args.tree)
        bare = [sys.executable, "-c", "pass"]
        wall(ingest, MESSAGE)  # warm the page cache and write the bytecode
        times: dict[str, list[float]] = {"python3 -c pass": [], "mailgate ingest": []}
        for _ in range(args.runs):
            times["python3 -c pass"].append(wall(bare, b""))
            times["mailgate ingest"].append(wall(ingest, MESSAGE))
        bare_modules = imports(bare, b"")
        extra = {m: t for m, t in imports(ingest, MESSAGE).items() if m not in bare_modules}
        incoming = Path(tmp) / "var" / "spool" / "incoming"  # NAME.msg, or an older tree's pairs
        spooled = sum(1 for p in incoming.iterdir() if p.suffix in (".msg", ".eml"))
    print(f"interpreter {sys.executable} ({sys.version.split()[0]}), {args.runs} runs each")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, values in times.items():
        median_ms, p90_ms = statistics.median(values) * 1000, p90(values) * 1000
        print(f"{name:18} median {median_ms:6.1f} ms   p90 {p90_ms:6.1f} ms")
    ratio = statistics.median(times["mailgate ingest"]) / statistics.median(
        times["python3 -c pass"]
    )
    print(f"ratio of medians   {ratio:.2f}x (target: at most 2x); {spooled} messages spooled")
    total = sum(t[0] for t in extra.values()) / 1000
    print(f"ingest imports {len(extra)} modules more than bare python, {total:.1f} ms in all;")
    print("the slowest (self / cumulative ms):")
    for name, (self_us, cumulative_us) in sorted(extra.items(), key=lambda kv: -kv[1][0])[
        : args.top
    ]:
        print(f"  {self_us / 1000:6.1f} {cumulative_us / 1000:7.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
