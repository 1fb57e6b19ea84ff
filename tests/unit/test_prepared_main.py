"""`prepare()` gives, for every message of the corpora, the value main's code gave before
the parse processes' second CPU pass (issue 16): digests of each `Prepared`, recorded
from main at ba9641d (`python -m tests.unit.test_prepared_main --record`), with three
`Settings` (none, the harness's, one trusting three authserv-ids of the corpora).

The corpora the suite checks: `tests/data/corpus` and the bench corpus (generated from
the copy in tests/data/bench_corpus: tests/corpora.py). The team's `shared/corpus` (213
real-world and malformed messages, 50 of them not in tests/data/corpus) is outside the
repository: checked by hand where a machine has it
(`python -m tests.unit.test_prepared_main --check-shared`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from datetime import datetime
from pathlib import Path

import pytest

from mailgate.pipeline.prepare import Settings, prepare
from tests.corpora import bench_corpus as generate_bench_corpus
from tests.corpora import shared_corpus

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "tests" / "data" / "prepared_main.json"
SHARED_CORPUS = shared_corpus()
SETTINGS = (
    Settings(),
    Settings(
        our_addresses=frozenset({"support@example.com", "billing@example.com"}),
        hostname="helpdesk.example.test",
        spam_threshold=5.0,
    ),
    Settings(
        our_addresses=frozenset({"support@example.com"}),
        hostname="mx.example.test",
        spam_threshold=2.5,
        trusted_authserv_ids=("mx.google.com", "posteo.de", "box.hisp.net"),
    ),
)


def canonical(value: object) -> object:
    """A JSON value that two equal values map to alike (class names kept, bytes hashed)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return [type(value).__name__, fields]
    if isinstance(value, tuple | list):
        return [canonical(v) for v in value]
    if isinstance(value, bytes):
        return ["bytes", hashlib.sha256(value).hexdigest()]
    if isinstance(value, datetime):
        return ["datetime", value.isoformat(), str(value.utcoffset())]
    if isinstance(value, frozenset | set):
        return sorted(canonical(v) for v in value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"no canonical form for {type(value).__name__}")


# facts added to Prepared after the record (each held to the worker's own working out by
# tests/unit/test_prepared_facts.py)
ADDED_SINCE = frozenset({"tag", "header_recipients"})


def digest(raw: bytes) -> str:
    """What prepare() makes of `raw` under each of SETTINGS, as one short digest."""
    values = []
    for settings in SETTINGS:
        p = prepare(raw, settings)
        name, fields = canonical(dataclasses.replace(p, traceback=p.traceback.split("\n")[-2:]))
        values.append([name, {k: v for k, v in fields.items() if k not in ADDED_SINCE}])
    text = json.dumps(values, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.eml"))}


@pytest.fixture(scope="module")
def bench_corpus(tmp_path_factory) -> Path:
    """The bench corpus, generated as bench/ingest.py generates it (tests/corpora.py)."""
    return generate_bench_corpus(tmp_path_factory.mktemp("bench-corpus"))


def _compare(name: str, folder: Path) -> None:
    recorded = json.loads(RECORD.read_text())[name]
    files = _files(folder)
    assert sorted(files) == sorted(recorded)
    differ = [f for f, raw in files.items() if digest(raw) != recorded[f]]
    assert differ == []


def test_the_test_corpus_prepares_as_on_main():
    _compare("tests/data/corpus", ROOT / "tests" / "data" / "corpus")


def test_the_bench_corpus_prepares_as_on_main(bench_corpus):
    _compare("bench", bench_corpus)


def test_a_changed_value_changes_the_digest():
    raw = (ROOT / "tests" / "data" / "corpus" / "plain").glob("*.eml")
    first = next(iter(sorted(raw))).read_bytes()
    assert digest(first) != digest(first.replace(b"\n\n", b"\nX-Extra: 1\n\n", 1))


def test_parsed_has_every_field_in_order_and_equals_its_init():
    from mailgate.parse.message import Parsed, parse

    for path in sorted((ROOT / "tests" / "data" / "corpus").rglob("*.eml"))[:40]:
        p = parse(path.read_bytes())
        assert list(vars(p)) == [f.name for f in dataclasses.fields(Parsed)]
        assert p == Parsed(**vars(p))


def record() -> None:
    """Write RECORD from this code (run on main's)."""
    import tempfile

    assert SHARED_CORPUS is not None
    folders = {
        "tests/data/corpus": ROOT / "tests" / "data" / "corpus",
        "shared/corpus": SHARED_CORPUS,
        "bench": generate_bench_corpus(Path(tempfile.mkdtemp(prefix="mg-bench-corpus-"))),
    }
    values = {
        name: {f: digest(raw) for f, raw in _files(folder).items()}
        for name, folder in folders.items()
    }
    RECORD.write_text(json.dumps(values, indent=0, sort_keys=True) + "\n")


def check_shared() -> None:
    """The team's shared corpus (its 50 messages tests/data/corpus lacks: outside the
    repository, so not a test of the suite) against the recorded values; run by hand."""
    if SHARED_CORPUS is None:
        sys.exit("the team's shared corpus is not on this machine ($MAILGATE_SHARED)")
    _compare("shared/corpus", SHARED_CORPUS)
    print(f"{SHARED_CORPUS}: every message prepares as recorded")


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    record()
elif __name__ == "__main__" and sys.argv[1:] == ["--check-shared"]:
    check_shared()
