"""compat32.single_part builds what the stdlib feed parser builds, or leaves it to it."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest

from mailgate.parse.compat32 import Compat32Message, parse_tree, single_part

BODY = b"Hello,\r\n\r\n> quoted\r\nbye\r\n"

# (name, raw, taken by the fast path)
CASES = [
    ("crlf", b"From: a@example.test\r\nSubject: hi\r\n\r\n" + BODY, True),
    ("lf", b"From: a@example.test\nSubject: hi\n\nbody\n", True),
    ("bare cr", b"From: a@example.test\rSubject: hi\r\rbody\r", True),
    ("mixed line ends", b"From: a\r\nTo: b\nSubject: c\r\r\nbody", True),
    ("cr before crlf", b"Subject: x\r\r\nbody\r\n", True),
    ("continuations", b"Subject: one\r\n two\r\n\tthree\r\nTo: b\r\n\r\nbody", True),
    ("blank continuation", b"Subject: one\r\n \r\nTo: b\r\n\r\nbody", True),
    ("no space after colon", b"Subject:x\r\nTo:\t\t y \r\n\r\nbody", True),
    ("empty value", b"Subject:\r\nTo:   \r\n\r\nbody", True),
    ("only blanks then continuation", b"Subject:   \r\n more\r\n\r\nbody", True),
    ("colon in value", b"Subject: a: b: c\r\n\r\n", True),
    ("8-bit header", "Subject: Grüße\r\nFrom: Zoë <z@e.test>\r\n\r\nok".encode(), True),
    ("8-bit body", "Subject: x\r\n\r\nGrüße\xff".encode("latin-1"), True),
    ("empty body", b"Subject: x\r\n\r\n", True),
    (
        "message/rfc822 kept whole",
        b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nb",
        True,
    ),
    ("text/html", b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>x</p>", True),
    ("control char in value", b"Subject: a\x01b\x7f\r\n\r\nbody", True),
    (
        "multipart",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
        False,
    ),
    ("multipart, upper case", b"Content-Type: MULTIPART/alternative; boundary=b\r\n\r\n", False),
    ("multipart, no boundary", b"Content-Type: multipart/mixed\r\n\r\nbody", False),
    (
        "delivery status",
        b"Content-Type: message/delivery-status\r\n\r\nA: b\r\n\r\nC: d\r\n",
        False,
    ),
    (
        "mbox From line",
        b"From a@example.test Mon Jan  1 00:00:00 2026\r\nSubject: x\r\n\r\nb",
        False,
    ),
    ("From line inside", b"Subject: x\r\nFrom a@example.test\r\n\r\nb", False),
    ("first line continuation", b" Subject: x\r\nTo: b\r\n\r\nbody", False),
    ("missing name", b": value\r\nSubject: x\r\n\r\nbody", False),
    ("space before colon", b"Subject : x\r\n\r\nbody", False),
    ("no blank line", b"Subject: x\r\nthis is body\r\n", False),
    ("headers only, no newline", b"Subject: x", False),
    ("headers only", b"Subject: x\r\n", False),
    # (once quadratic in the blanks: the field pattern is possessive)
    ("last line without its end", b"Subject:" + b" " * 20_000 + b"x" * 20_000, False),
    ("continuation without its end", b"Subject: a\r\n" + b"\t" * 20_000 + b"x", False),
    ("not a header", b"hello world\r\n\r\n", False),
]


def _state(msg: Compat32Message) -> dict:
    state = dict(vars(msg))
    state["defects"] = [(type(d), str(d)) for d in state["defects"]]
    state["policy"] = repr(state["policy"])
    if isinstance(msg.get_payload(), list):
        state["_payload"] = [_state(part) for part in msg.get_payload()]
    return state


@pytest.mark.parametrize(("name", "raw", "fast"), CASES, ids=[c[0] for c in CASES])
def test_single_part_is_the_feed_parsers_result(name: str, raw: bytes, fast: bool) -> None:
    stdlib = BytesParser(_class=Compat32Message, policy=policy.compat32).parsebytes(raw)
    built = single_part(raw)
    assert (built is not None) == fast, name
    if built is not None:
        assert type(built) is Compat32Message
        assert _state(built) == _state(stdlib)
    assert _state(parse_tree(raw, [])) == _state(stdlib)  # either way, the same tree
