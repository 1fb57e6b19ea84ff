"""compat32.fast_tree builds a one-level multipart as the stdlib feed parser builds it
(parts, payloads, preamble, epilogue, headers), or leaves the message to it."""

from __future__ import annotations

import itertools
from email import policy
from email.parser import BytesParser

import pytest

from mailgate.parse.compat32 import Compat32Message, fast_tree, parse_tree
from tests.unit.test_compat32 import _state

HEAD = b'From: a@example.test\nContent-Type: multipart/mixed; boundary="b=1"\n'
TEXT = b"Content-Type: text/plain\n\nHello,\n\nbye\n"
FILE = b"Content-Type: application/pdf; name=x.pdf\nContent-Transfer-Encoding: base64\n\nAAAA\n"

# (name, raw, taken by the fast path)
CASES = [
    ("two parts", HEAD + b"\n--b=1\n" + TEXT + b"--b=1\n" + FILE + b"--b=1--\n", True),
    ("preamble", HEAD + b"\nThis is MIME.\n\n--b=1\n" + TEXT + b"--b=1--\n", True),
    ("epilogue", HEAD + b"\n--b=1\n" + TEXT + b"--b=1--\nafter\n\nmore\n", True),
    ("close at the end, no line end", HEAD + b"\n--b=1\n" + TEXT + b"--b=1--", True),
    ("blanks after delimiters", HEAD + b"\n--b=1 \t\n" + TEXT + b"--b=1--  \n", True),
    ("part without headers", HEAD + b"\n--b=1\n\nplain\n--b=1--\n", True),
    ("empty part body", HEAD + b"\n--b=1\nContent-Type: text/plain\n\n--b=1--\n", True),
    ("delimiter-like text", HEAD + b"\n--b=1\n\n--b=1x\n --b=1\n--b=2\n--b=1--\n", True),
    (
        "enclosed message",
        HEAD + b"\n--b=1\nContent-Type: message/rfc822\n\nSubject: x\n\nin\n--b=1--\n",
        True,
    ),
    (
        "alternative",
        HEAD.replace(b"mixed", b"alternative") + b"\n--b=1\n" + TEXT + b"--b=1\n"
        b"Content-Type: text/html\n\n<p>Hello</p>\n--b=1--\n",
        True,
    ),
    ("no parts", HEAD + b"\nonly a preamble\n", False),
    ("no closing delimiter", HEAD + b"\n--b=1\n" + TEXT, False),
    ("closing delimiter first", HEAD + b"\n--b=1--\n" + TEXT, False),
    ("two delimiters in a row", HEAD + b"\n--b=1\n--b=1\n" + TEXT + b"--b=1--\n", False),
    (
        "nested multipart",
        HEAD + b"\n--b=1\nContent-Type: multipart/alternative; boundary=c\n\n"
        b"--c\n\nx\n--c--\n--b=1--\n",
        False,
    ),
    ("digest", HEAD.replace(b"mixed", b"digest") + b"\n--b=1\n\nx\n--b=1--\n", False),
    (
        "delivery status part",
        HEAD + b"\n--b=1\nContent-Type: message/delivery-status\n\nA: b\n\nC: d\n--b=1--\n",
        False,
    ),
    ("part header not clean", HEAD + b"\n--b=1\nContent-Type : text/plain\n\nx\n--b=1--\n", False),
    ("part without blank line", HEAD + b"\n--b=1\nnot a header\n--b=1--\n", False),
    ("part headers up to the delimiter", HEAD + b"\n--b=1\nX-A: 1\n--b=1--\n", False),
    (
        "base64 multipart",
        HEAD + b"Content-Transfer-Encoding: base64\n\n--b=1\n\nx\n--b=1--\n",
        False,
    ),
    ("empty boundary", HEAD.replace(b'"b=1"', b'""') + b"\n--\n\nx\n----\n", False),
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
