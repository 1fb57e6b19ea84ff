"""The records the parse path builds without their dataclass `__init__` (parse.records)
equal what `__init__` builds from the same fields, every field set, in the class's order."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mailgate.parse.compat32 import parse_tree
from mailgate.parse.envelope import Envelope, read_envelope
from mailgate.parse.records import frozen_record
from mailgate.pipeline.prepare import Facts, Prepared, Settings, prepare

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "tests" / "data" / "corpus").rglob("*.eml"))
TRUSTING = Settings(
    our_addresses=frozenset({"support@example.com"}),
    hostname="mx.example.test",
    spam_threshold=2.5,
    trusted_authserv_ids=("mx.google.com", "posteo.de"),
)


def assert_as_init_builds(record: object) -> None:
    cls = type(record)
    assert list(vars(record)) == [f.name for f in dataclasses.fields(cls)]
    again = cls(**vars(record))
    assert record == again
    assert repr(record) == repr(again)
    assert hash(record) == hash(again)


def test_frozen_record_is_the_class_with_its_fields_and_stays_frozen():
    env = frozen_record(Envelope, vars(Envelope(subject="hi", to=("a@example.test",))))
    assert type(env) is Envelope
    assert env == Envelope(subject="hi", to=("a@example.test",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        env.subject = "other"  # type: ignore[misc]


@pytest.mark.parametrize("path", FILES[::4], ids=lambda p: p.name)
def test_read_envelope_builds_what_envelope_init_builds(path: Path):
    defects: list[str] = []
    assert_as_init_builds(read_envelope(parse_tree(path.read_bytes(), defects), defects))


@pytest.mark.parametrize("settings", [Settings(), TRUSTING], ids=["no settings", "trusting"])
def test_prepare_builds_what_prepared_and_facts_init_build(settings: Settings):
    prepared = [prepare(path.read_bytes(), settings) for path in FILES[::4]]
    parsed = [p for p in prepared if p.parsed is not None]
    assert parsed, "the corpus has messages that parse"
    for p in parsed:
        assert isinstance(p.facts, Facts)
        assert_as_init_builds(p.facts)
        assert_as_init_builds(p)
        assert p == Prepared(**vars(p))
