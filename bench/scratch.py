"""The benches' scratch directories: made under the system's temporary directory and
removed when the bench exits, so repeated runs do not fill it (a drain's database and
spool are 15 MiB at 2,000 messages, 150 MiB at 20,000). `MAILGATE_BENCH_KEEP=1` keeps
them, for a look at a run's database or daemon log."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path


def scratch_dir(prefix: str) -> Path:
    """A new directory, removed at this process's exit unless MAILGATE_BENCH_KEEP is set."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if not os.environ.get("MAILGATE_BENCH_KEEP"):
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
