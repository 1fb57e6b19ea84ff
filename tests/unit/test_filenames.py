"""Unit tests of the one attachment file-name cleaner (mailgate.parse.filenames)."""

from __future__ import annotations

import random
import re

import pytest

from mailgate.parse.filenames import MAX_FILENAME, attachment_filename, safe_filename

# (name, fallback, expected)
CASES = [
    ("report.pdf", "attachment", "report.pdf"),
    ("Картинка.png", "attachment", "Картинка.png"),
    # directories and traversal: the last named component
    ("../../etc/passwd", "attachment", "passwd"),
    ("C:\\Users\\x\\evil.exe", "attachment", "evil.exe"),
    ("/var/spool/", "attachment", "spool"),
    ("..", "attachment", "attachment"),
    ("..\\..\\", "x.bin", "x.bin"),
    ("....", "x.bin", "x.bin"),
    # nothing usable left: the fallback, also an empty one
    ("", "attachment", "attachment"),
    ("", "", ""),
    ("\x00", "decrypted.bin", "decrypted.bin"),
    (" . ", "", ""),
    # control characters (C0 and C1), zero-width and bidi characters, BOM
    ("a\x00b\x07c.pdf", "attachment", "abc.pdf"),
    ("line\nbreak\r.txt", "attachment", "linebreak.txt"),
    ("tab\tname.txt", "attachment", "tabname.txt"),
    ("x\x85y\x9f.txt", "attachment", "xy.txt"),
    ("evil\u202egpj.exe", "attachment", "evilgpj.exe"),
    ("x\u2066y\u2069z\u200e.pdf", "attachment", "xyz.pdf"),
    ("arabic\u061cmark.pdf", "attachment", "arabicmark.pdf"),
    ("zero\u200bwidth\u200d.pdf", "attachment", "zerowidth.pdf"),
    ("\ufeffbom.txt", "attachment", "bom.txt"),
    # characters Windows forbids
    ("what?<>|*.pdf", "attachment", "what_____.pdf"),
    ('a:b"c.txt', "attachment", "a_b_c.txt"),
    # whitespace collapsed, no trailing dots or spaces
    ("  spaced   name .pdf  ", "attachment", "spaced name .pdf"),
    ("trailing. . .", "attachment", "trailing"),
    # leading dots: a bare extension gets the fallback's stem; a dotted rest is kept
    (".hidden", "attachment", "attachment.hidden"),
    (".bashrc", "secret.bin", "secret.bashrc"),
    (".pdf", "attachment-3.pdf", "attachment-3.pdf"),
    (".pdf", "", "attachment.pdf"),
    ("..x", "part.bin", "part.x"),
    (". . .env", "attachment", "attachment.env"),
    (".config.yml", "attachment", "config.yml"),
    # Windows device names, with any extension, any case
    ("CON", "attachment", "_CON"),
    ("con.txt", "attachment", "_con.txt"),
    ("CON .txt", "attachment", "_CON .txt"),
    ("Lpt9.log", "attachment", "_Lpt9.log"),
    ("COM1.tar.gz", "attachment", "_COM1.tar.gz"),
    ("nul", "attachment", "_nul"),
    ("CONIN$.txt", "attachment", "_CONIN$.txt"),
    ("conout$", "attachment", "_conout$"),
    ("CONSOLE.txt", "attachment", "CONSOLE.txt"),
    ("COM10.txt", "attachment", "COM10.txt"),
    # Unicode NFC, also where a dropped character stood between the parts
    ("e\u0301te\u0301.txt", "attachment", "été.txt"),
    ("e\u200b\u0301.txt", "attachment", "é.txt"),
    # bounded length, keeping a short extension
    ("x" * 500 + ".pdf", "attachment", "x" * 196 + ".pdf"),
    ("y" * 500, "attachment", "y" * 200),
    ("z" * 300 + "." + "e" * 17, "attachment", "z" * 200),
    ("w" * 194 + "  . ." + "t" * 10 + ".pdf", "attachment", "w" * 194 + ".pdf"),
    ("v" * 200, "attachment", "v" * 200),
]


@pytest.mark.parametrize(("name", "fallback", "expected"), CASES)
def test_safe_filename(name: str, fallback: str, expected: str) -> None:
    assert safe_filename(name, fallback) == expected


def test_default_fallback_is_attachment() -> None:
    assert safe_filename("") == "attachment"
    assert safe_filename("../") == "attachment"


@pytest.mark.parametrize(
    ("name", "index", "content_type", "expected"),
    [
        ("report.pdf", 5, "text/plain", "report.pdf"),
        ("", 1, "application/pdf", "attachment-1.pdf"),
        ("", 2, "message/rfc822", "attachment-2.eml"),
        ("", 3, "application/x-unknown", "attachment-3.bin"),
        ("..\\..\\", 4, "image/png", "attachment-4.png"),
        (".hidden", 1, "application/pdf", "attachment-1.hidden"),
        ("\u202e", 7, "text/calendar", "attachment-7.ics"),
    ],
)
def test_attachment_filename(name: str, index: int, content_type: str, expected: str) -> None:
    assert attachment_filename(name, index, content_type) == expected


_UNSAFE = re.compile(
    r"[/\\<>:\"|?*\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|COM[1-9]|LPT[1-9]) *(\.|$)", re.I)


def _hostile_names() -> list[str]:
    """Deterministic random names built from the pieces that make file names dangerous."""
    rng = random.Random(20261201)
    pieces = list("ab.. /\\\x00\t\n\u202e\u200b\u061c:?*$ e\u0301\ufeff\x85-_") + [
        "CON",
        "lpt1",
        ".pdf",
        "CONIN$",
        "..",
    ]
    names = [name for name, _, _ in CASES]
    for _ in range(3000):
        name = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        names.append(name * 40 if rng.random() < 0.05 else name)
    return names


def test_every_result_is_safe_and_stable() -> None:
    for name in _hostile_names():
        got = safe_filename(name)
        assert got, repr(name)
        assert not _UNSAFE.search(got), (name, got)
        assert not got.startswith(".") and not got.endswith((".", " ")), (name, got)
        assert not _RESERVED.match(got), (name, got)
        assert len(got) <= MAX_FILENAME, (name, got)
        assert safe_filename(got) == got, (name, got)
