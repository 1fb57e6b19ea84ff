"""Decoding as close to the sender's intent as the best parsers get (issue 13, item 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgate.parse.charsets import guess_decode
from mailgate.parse.message import parse

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"


def msg(headers: bytes, body: bytes = b"hi\r\n") -> bytes:
    return b"From: a@example.org\r\nTo: b@example.org\r\n" + headers + b"\r\n\r\n" + body


@pytest.mark.parametrize(
    ("subject", "wanted"),
    [
        (b"=?utf-8?q?Fr\xc3\xb6sche?=", "Frösche"),
        (b"=?iso-8859-1?q?Fr\xc3\xb6sche?=", "Frösche"),  # raw utf-8 under a latin-1 label
        (b"=?iso-8859-1?q?Fr\xf6sche_und_Kr=F6ten?=", "Frösche und Kröten"),
        (b"=?utf-8?q?=C3=84rger?= mit =?utf-8?q?Fr\xc3\xb6schen?=", "Ärger mit Fröschen"),
    ],
)
def test_8bit_bytes_inside_an_encoded_word(subject, wanted):
    p = parse(msg(b"Subject: " + subject))
    assert p.subject == wanted


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        ("тест тест", "koi8-r"),
        ("тест тест", "cp1251"),
        ("ТЕСТ", "koi8-r"),
        ("ТЕСТ", "cp1251"),
        ("Привет мир, это тестовое сообщение.", "koi8-r"),
        ("Grüße aus Köln", "latin-1"),
        ("ÄÖÜ", "latin-1"),
        ("“Quotes” – and dashes", "cp1252"),
    ],
)
def test_undeclared_8bit_text_is_guessed(text, codec):
    assert guess_decode(text.encode(codec))[0] == text


def test_koi8r_without_a_declared_charset_in_header_and_body():
    p = parse(msg(b"Subject: \xd4\xc5\xd3\xd4 \xd4\xc5\xd3\xd4", b"\xf4\xe5\xf3\xf4\r\n"))
    assert (p.subject, p.text) == ("тест тест", "ТЕСТ\n")
    assert any("koi8-r (guessed)" in d for d in p.defects)


def test_nested_multipart_reusing_its_parents_boundary_keeps_the_plain_body():
    p = parse((CORPUS / "malformed" / "mailparser__mail_malformed_1.eml").read_bytes())
    assert p.text.strip() == "--Sent from my iPhone"
    assert p.html and not p.attachments  # the text part is the body, not an attachment


def test_boundary_with_an_unclosed_quote():
    raw = msg(
        b'Content-Type: multipart/mixed; boundary="abc',
        b"--abc\r\nContent-Type: text/plain\r\n\r\nhello body\r\n"
        b"--abc\r\nContent-Type: application/pdf; name=x.pdf\r\n\r\nPDF\r\n--abc--\r\n",
    )
    p = parse(raw)
    assert p.text.strip() == "hello body"
    assert [a.filename for a in p.attachments] == ["x.pdf"]
    assert any("re-read with 'abc'" in d for d in p.defects)


def test_delimiters_that_match_no_declared_boundary_are_read_as_parts():
    p = parse((CORPUS / "malformed" / "flanker__mailformed-headers.eml").read_bytes())
    assert "Content-Type" not in p.text and p.text.strip() == "Hello"
