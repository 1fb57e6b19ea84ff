"""compat32.fast_tree builds a one-level multipart as the stdlib feed parser builds it
(parts, payloads, preamble, epilogue, headers), or leaves the message to it."""

from __future__ import annotations

import itertools
import random
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from mailgate.parse.compat32 import Compat32Message, fast_tree, parse_tree
from tests.unit.test_compat32 import _state

HEAD = b'From: a@example.test\nContent-Type: multipart/mixed; boundary="b=1"\n'
TEXT = b"Content-Type: text/plain\n\nHello,\n\nbye\n"
FILE = b"Content-Type: application/pdf; name=x.pdf\nContent-Transfer-Encoding: base64\n\nAAAA\n"

D, CLOSE = b"--b=1\n", b"--b=1--\n"  # a delimiter line, the closing one
RFC822 = b"Content-Type: message/rfc822\n\nSubject: x\n\nin\n"
NESTED = b"Content-Type: multipart/alternative; boundary=c\n\n--c\n\nx\n--c--\n"
DSN = b"Content-Type: message/delivery-status\n\nA: b\n\nC: d\n"
HTML = b"Content-Type: text/html\n\n<p>Hello</p>\n"


def _mp(body: bytes, head: bytes = HEAD) -> bytes:
    return head + b"\n" + body


# (name, raw, taken by the fast path)
CASES = [
    ("two parts", _mp(D + TEXT + D + FILE + CLOSE), True),
    ("preamble", _mp(b"This is MIME.\n\n" + D + TEXT + CLOSE), True),
    ("epilogue", _mp(D + TEXT + CLOSE + b"after\n\nmore\n"), True),
    ("close at the end, no line end", _mp(D + TEXT + b"--b=1--"), True),
    ("blanks after delimiters", _mp(b"--b=1 \t\n" + TEXT + b"--b=1--  \n"), True),
    ("part without headers", _mp(D + b"\nplain\n" + CLOSE), True),
    ("empty part body", _mp(D + b"Content-Type: text/plain\n\n" + CLOSE), True),
    ("delimiter-like text", _mp(D + b"\n--b=1x\n --b=1\n--b=2\n" + CLOSE), True),
    ("enclosed message", _mp(D + RFC822 + CLOSE), True),
    ("alternative", _mp(D + TEXT + D + HTML + CLOSE, HEAD.replace(b"mixed", b"alternative")), True),
    ("no parts", _mp(b"only a preamble\n"), False),
    ("no closing delimiter", _mp(D + TEXT), False),
    ("closing delimiter first", _mp(CLOSE + TEXT), False),
    ("two delimiters in a row", _mp(D + D + TEXT + CLOSE), False),
    ("nested multipart", _mp(D + NESTED + CLOSE), False),
    ("digest", _mp(D + b"\nx\n" + CLOSE, HEAD.replace(b"mixed", b"digest")), False),
    ("delivery status part", _mp(D + DSN + CLOSE), False),
    ("part header not clean", _mp(D + b"Content-Type : text/plain\n\nx\n" + CLOSE), False),
    ("part without blank line", _mp(D + b"not a header\n" + CLOSE), False),
    ("part headers up to the delimiter", _mp(D + b"X-A: 1\n" + CLOSE), False),
    (
        "base64 multipart",
        _mp(D + b"\nx\n" + CLOSE, HEAD + b"Content-Transfer-Encoding: base64\n"),
        False,
    ),
    ("empty boundary", _mp(b"--\n\nx\n----\n", HEAD.replace(b'"b=1"', b'""')), False),
]


def _stdlib(raw: bytes) -> Compat32Message:
    return BytesParser(_class=Compat32Message, policy=policy.compat32).parsebytes(raw)


@pytest.mark.parametrize(("name", "raw", "fast"), CASES, ids=[c[0] for c in CASES])
def test_a_multipart_is_the_feed_parsers_result(name: str, raw: bytes, fast: bool) -> None:
    built = fast_tree(raw)
    assert (built is not None) == fast, name
    if built is not None:
        assert _state(built) == _state(_stdlib(raw))
    assert _state(parse_tree(raw, [])) == _state(_stdlib(raw))


# the pieces of a multipart, in every combination, with each kind of line end
PREAMBLES = (b"", b"\n", b"MIME.\n", b"MIME.\n\n")
DELIMITERS = (b"--b=1\n", b"--b=1 \n", b"--b=1\t \n")
PARTS = (b"\n", b"\nx", b"\nx\n", b"X-A: 1\n\n", b"X-A: 1\n folded\n\nbody\n\n", TEXT, FILE)
CLOSES = (b"--b=1--", b"--b=1--\n", b"--b=1-- \n", b"--b=1--\nepilogue\n", b"--b=1--\n\n")


def _variants() -> list[bytes]:
    out = []
    for pre, delim, (one, two), close in itertools.product(
        PREAMBLES, DELIMITERS, itertools.combinations(PARTS, 2), CLOSES
    ):
        raw = HEAD + b"\n" + pre + delim + one + b"\n" + delim + two + b"\n" + close
        out += [raw, raw.replace(b"\n", b"\r\n"), raw.replace(b"\n", b"\r")]
    return out


def test_every_combination_is_the_feed_parsers_result():
    variants = _variants()
    fast = [raw for raw in variants if fast_tree(raw) is not None]
    assert len(fast) > len(variants) // 2  # most are taken by the fast path
    assert [raw for raw in fast if _state(fast_tree(raw)) != _state(_stdlib(raw))] == []


def _raw_state(msg: Compat32Message) -> dict:
    """`_state` without decoding payloads (a mutated part may not decode)."""
    state = dict(vars(msg))
    state["defects"] = [(type(d), str(d)) for d in state["defects"]]
    state["policy"] = repr(state["policy"])
    if isinstance(msg._payload, list):
        state["_payload"] = [_raw_state(part) for part in msg._payload]
    return state


def test_mutated_corpus_multiparts_are_the_feed_parsers_result():
    rng = random.Random(20261202)
    folder = Path(__file__).resolve().parents[1] / "data" / "corpus"
    seeds = [p.read_bytes() for p in sorted(folder.rglob("*.eml"))]
    seeds = [raw for raw in seeds if b"multipart/" in raw.lower() and len(raw) < 100_000]
    fast, differ = 0, []
    for raw in seeds:
        for _ in range(8):
            data = bytearray(raw)
            for _ in range(rng.randint(1, 6)):
                data[rng.randrange(len(data))] = rng.choice(b'\x00\r\n:;=?"<>\\- \t\xffabB')
            for variant in (raw, bytes(data), raw[: rng.randrange(len(raw))]):
                built = fast_tree(variant)
                if built is not None:
                    fast += 1
                    if _raw_state(built) != _raw_state(_stdlib(variant)):
                        differ.append(variant[:200])
    assert fast > len(seeds)  # the fast path is taken, and each time builds the same tree
    assert differ == []
