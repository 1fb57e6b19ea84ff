"""mime._payload_bytes is `Message.get_payload(decode=True)` of every leaf the walk reads
(its own encoding of 7bit/8bit/binary/unknown and quoted-printable payloads)."""

from __future__ import annotations

from email.message import Message
from pathlib import Path

import pytest

from mailgate.parse.compat32 import parse_tree
from mailgate.parse.mime import _payload_bytes
from mailgate.parse.part_headers import read_part_head

ROOT = Path(__file__).resolve().parents[2]
BODIES = [
    "plain ascii\r\nline two=\r\n",
    "Gr\udcc3\udcbc\udcc3\udc9fe, 8-bit bytes escaped\n",
    "soft=\nbreak and =C3=A9 and =3D and a bad =ZZ escape=",
    "",
    "real Unicode é (not from the parser)",
    "é beside an escaped byte \udcff",
    "a lone high surrogate \ud800",
]
CTES = [
    None,
    "7bit",
    "8bit",
    "binary",
    "quoted-printable",
    "Quoted-Printable",
    "QUOTED-PRINTABLE",
    "quoted-printable ",
    "base64",
    "Base64",
    "x-uuencode",
    "uue",
    "x-unknown",
    "8bit\udcff",
    "",
]


def _stdlib(part: Message) -> object:
    try:
        return part.get_payload(decode=True)
    except Exception as exc:  # noqa: BLE001 - compared as the error it was
        return type(exc)


def _ours(part: Message) -> object:
    try:
        return _payload_bytes(part, read_part_head(part))
    except Exception as exc:  # noqa: BLE001
        return type(exc)


@pytest.mark.parametrize("cte", CTES, ids=repr)
def test_each_body_in_each_transfer_encoding_as_the_stdlib(cte: str | None):
    for body in BODIES:
        part = Message()
        part["Content-Type"] = "text/plain; charset=utf-8"
        if cte is not None:
            part.set_raw("Content-Transfer-Encoding", cte)
            part.set_raw("content-transfer-encoding", "base64")  # a second one: not read
        part.set_payload(body)
        assert _ours(part) == _stdlib(part), (cte, body)


def test_no_payload_and_a_multipart_as_the_stdlib():
    empty = Message()
    assert _ours(empty) == _stdlib(empty) is None
    outer = Message()
    outer.attach(Message())
    assert _ours(outer) == _stdlib(outer)


def test_every_leaf_of_the_corpus_as_the_stdlib():
    leaves = 0
    for path in sorted((ROOT / "tests" / "data" / "corpus").rglob("*.eml")):
        for part in parse_tree(path.read_bytes(), []).walk():
            if not part.is_multipart():
                leaves += 1
                assert _ours(part) == _stdlib(part), path.name
    assert leaves > 200
