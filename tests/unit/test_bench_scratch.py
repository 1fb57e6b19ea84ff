"""The benches clean up after themselves (bench/scratch.py): a run's database and spool
are gone when it exits, unless MAILGATE_BENCH_KEEP asks to keep them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAKE_ONE = (
    "from bench.scratch import scratch_dir; d = scratch_dir('mg-test-scratch-'); "
    "(d / 'mailgate.db').write_bytes(b'x'); print(d)"
)


def _made(keep: bool) -> Path:
    env = {k: v for k, v in os.environ.items() if k != "MAILGATE_BENCH_KEEP"}
    if keep:
        env["MAILGATE_BENCH_KEEP"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", MAKE_ONE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return Path(out.stdout.strip())


def test_a_benchs_scratch_directory_is_removed_when_it_exits() -> None:
    made = _made(keep=False)
    assert made.name.startswith("mg-test-scratch-")
    assert not made.exists()


def test_mailgate_bench_keep_keeps_it() -> None:
    made = _made(keep=True)
    try:
        assert (made / "mailgate.db").read_bytes() == b"x"
    finally:
        shutil.rmtree(made, ignore_errors=True)
