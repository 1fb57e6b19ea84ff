"""The corpora some tests drain besides tests/data/corpus.

The bench corpus: 2,000 generated messages (909 threads, follow-ups in the same batch as
their first message), made by the generator copied into tests/data/bench_corpus, so a
checkout anywhere can make it. The team's shared corpus (213 real-world and malformed
messages, of which tests/data/corpus holds the 163 with a known license) is outside the
repository: found at $MAILGATE_SHARED, in a shared/ above the checkout, or at /work/shared
(the team's machines), else None.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "tests" / "data" / "bench_corpus" / "gen_corpus.py"


def bench_corpus(out: Path) -> Path:
    """Generate the bench corpus into `out` (as bench/ingest.py does); its eml folder."""
    args = [sys.executable, str(GENERATOR), str(out), "-n", "2000"]
    subprocess.run([*args, "--tag-format", "[support #{n}]"], check=True, stdout=subprocess.DEVNULL)
    return out / "eml"


def shared_corpus() -> Path | None:
    """The team's shared corpus folder, if this machine has it."""
    places = [os.environ.get("MAILGATE_SHARED", ""), *(str(p / "shared") for p in ROOT.parents)]
    for place in [*places, "/work/shared"]:
        if place and (Path(place) / "corpus").is_dir():
            return Path(place) / "corpus"
    return None
