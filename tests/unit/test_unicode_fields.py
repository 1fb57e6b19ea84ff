"""Every text field of Parsed is valid Unicode, whatever bytes came in (defect recorded)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from mailgate.parse.message import Parsed, parse
from mailgate.parse.unicode import valid_text

_BAD = re.compile(r"[\ud800-\udfff\x00]")


def all_text(p: Parsed) -> list[str]:
    out: list[str] = []

    def walk(v: object) -> None:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, tuple):
            for x in v:
                walk(x)
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            for f in dataclasses.fields(v):
                walk(getattr(v, f.name))

    walk(p)
    return out


HOSTILE = {
    "8-bit content-type": (
        b'From: a@x.org\r\nContent-Type: text/pl\xe9ain; charset="\xe9\xff"\r\n\r\nhi\r\n'
    ),
    "8-bit charset": (
        b"From: a@x.org\r\nContent-Type: text/plain; charset=\xff\xfe\r\n\r\nhi \xe9\r\n"
    ),
    "8-bit filename": (
        b"From: a@x.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b'Content-Type: application/pdf; name="r\xe9\xff.pdf"\r\n'
        b"Content-Disposition: attachment; filename*=utf-8''r%E9%FF.pdf\r\n"
        b"Content-ID: <\xff\xfe@x>\r\n\r\nAAAA\r\n--b--\r\n"
    ),
    "NUL everywhere": b"From: a\x00b@x.org\r\nSubject: s\x00t\r\nX-A: \x00\r\n\r\nbo\x00dy\r\n",
    "8-bit in every header": (
        b"From: \xff\xfe <a@x.org>\r\nTo: \xe9@x.org\r\nSubject: \xc3(\xa0\xa1\r\n"
        b"Message-ID: <\xff@x>\r\nReferences: <\xfe@x>\r\nX-Bad: \xed\xa0\x80\r\n\r\nhi\r\n"
    ),
    "utf-8 surrogate encoding": (
        b"From: a@x.org\r\nSubject: \xed\xa0\x80\xed\xb0\x80\r\n\r\n\xed\xa0\x80\r\n"
    ),
}


@pytest.mark.parametrize("raw", HOSTILE.values(), ids=HOSTILE.keys())
def test_no_lone_surrogate_or_nul_leaves_the_parse_stage(raw):
    p = parse(raw)
    bad = [s for s in all_text(p) if _BAD.search(s)]
    assert bad == []
    for s in all_text(p):
        s.encode("utf-8")  # strict: what SQLite, PostgreSQL and JSON need


def test_8bit_content_type_is_malformed_and_the_body_stays_the_body():
    p = parse(HOSTILE["8-bit content-type"])
    assert p.content_type == "text/plain" and p.text == "hi\n" and not p.attachments
    assert any("Content-Type" in d for d in p.defects)


@pytest.mark.parametrize(
    ("value", "wanted", "defect"),
    [
        ("plain", "plain", False),
        ("Grüße", "Grüße", False),
        ("Gr\udcfc\udcdfe", "Grüße", True),  # latin-1 bytes behind surrogateescape
        ("Gr\udcc3\udcbc\udcc3\udc9fe", "Grüße", True),  # utf-8 bytes behind it
        ("a\ud800b", "a\ufffdb", True),  # a lone surrogate from nowhere
        ("a\x00b", "ab", True),
    ],
)
def test_valid_text(value, wanted, defect):
    defects: list[str] = []
    assert valid_text(value, "subject", defects) == wanted
    assert bool(defects) == defect
