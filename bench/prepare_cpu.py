"""Print the CPU per message of pipeline/prepare.prepare() and its parts; no assertions.

Usage: python3 bench/prepare_cpu.py CORPUS_DIR [--rounds N]
CORPUS_DIR holds *.eml (also in an `eml/` subfolder), e.g. /tmp/gc from
`python3 /work/shared/bench/gen_corpus.py /tmp/gc -n 2000 --tag-format '[support #{n}]'`.
CPU is `time.process_time` over the whole corpus, each round in turn (so every line sees
the same load); printed: the best and the median round, with the load average before and
after. `prepare` runs with the `Settings` of bench/ingest.py's config (spam checked), as
the parse processes do; the facts, the report hint and the pickle round trip of the
results (a parse process dumps a batch of 64, the worker loads it) are timed on their
own. The stdlib parsers the floor (`shared/bench/floor.py`) uses are measured beside,
on the same files. `re`'s cache of compiled patterns is emptied before each line's round:
in a drain every multipart's boundary is new, and the stdlib's feed parser compiles a
pattern for each one (kept from the round before, the feed parser looked cheaper than it
is in the daemon).
"""

from __future__ import annotations

import argparse
import contextlib
import pickle
import re
import statistics
import sys
import time
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_dir  # noqa: E402
from mailgate.agents.reply import new_text  # noqa: E402
from mailgate.bounces.report_hint import has_report_part  # noqa: E402
from mailgate.parse.limits import ParseRejected  # noqa: E402
from mailgate.parse.message import parse  # noqa: E402
from mailgate.pipeline.prepare import Settings, facts, prepare  # noqa: E402

BATCH = 64  # the daemon's batch size: one pickle per batch and parse process


def _parse(raw: bytes) -> None:
    with contextlib.suppress(ParseRejected):
        parse(raw)


def _stdlib(parser_policy: policy.Policy) -> Callable[[bytes], object]:
    return BytesParser(policy=parser_policy).parsebytes


def _settings() -> Settings:
    """The Settings the parse processes get in bench/ingest.py's drain."""
    from tests.harness import load, write_config

    tmp = scratch_dir("mg-prepare-cpu-")
    return Settings.of(load(write_config(tmp, database_url=f"sqlite:///{tmp}/x.db")))


def _batches(items: list) -> list[list]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


def _loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def main() -> None:
    """Measure every line in turn, `rounds` times."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    folder = args.corpus / "eml" if (args.corpus / "eml").is_dir() else args.corpus
    files = [p.read_bytes() for p in sorted(folder.rglob("*.eml"))]
    settings = _settings()
    prepared = [prepare(raw, settings) for raw in files]
    parsed = [p.parsed for p in prepared if p.parsed is not None]
    texts = [p.text for p in parsed]
    dumped = [pickle.dumps(b) for b in _batches(prepared)]  # (the protocol the pool uses)
    lines: list[tuple[str, Callable, list]] = [
        ("prepare (all of it)", lambda raw: prepare(raw, settings), files),
        ("parse.message.parse", _parse, files),
        ("agents.reply.new_text", new_text, texts),
        ("prepare.facts (classify, auth, digest)", lambda p: facts(p, settings), parsed),
        ("bounces.report_hint.has_report_part", has_report_part, files),
        ("pickle.dumps, batches (parse process)", pickle.dumps, _batches(prepared)),
        ("pickle.loads, batches (worker)", pickle.loads, dumped),
        ("stdlib policy.default (floor)", _stdlib(policy.default), files),
        ("stdlib compat32", _stdlib(policy.compat32), files),
    ]
    print(f"{folder}: {len(files)} messages, load before {_loadavg()}")
    rounds: dict[str, list[float]] = {label: [] for label, _, _ in lines}
    for _ in range(args.rounds):
        for label, fn, items in lines:
            re.purge()
            start = time.process_time()
            for item in items:
                fn(item)
            rounds[label].append((time.process_time() - start) * 1000 / len(files))
    for label, ms in rounds.items():
        print(f"  {label:<40} best {min(ms):6.3f} ms  median {statistics.median(ms):6.3f} ms")
    print(f"load after {_loadavg()}")


if __name__ == "__main__":
    main()
