"""outgoing/encoded_words.py writes the encoded words and lines the standard library writes:
`Header(text, UTF8)` as `Header(text, "utf-8")`, `formataddr` with UTF8 as with "utf-8"."""

from __future__ import annotations

import random
from email.header import Header
from email.utils import formataddr

import pytest

from mailgate.outgoing.encoded_words import UTF8

ALPHABETS = [
    "abc xyz-_=?!*+/",  # ASCII, the characters quoted-printable keeps and those it quotes
    "éèüöäßç ",  # Latin-1: quoted-printable is shorter
    "Привет мир ",  # Cyrillic: two bytes each
    "東京都渋谷区 ",  # CJK: three bytes each, base64 is shorter
    "😀🎉 a",  # four bytes each
    "\t\"'(),.:;<>@[\\] ",  # specials and quotes
]


def _texts(seed: int, n: int) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        chars = "".join(rnd.sample(ALPHABETS, rnd.randint(1, 3)))
        out.append("".join(rnd.choice(chars) for _ in range(rnd.randint(0, 300))))
    return out


FIXED = [
    "Grüße aus München",
    "[support #12] Rechnung für März – bitte prüfen",
    "Счёт " * 40,
    "東" * 100,
    "é",
    "a" * 200 + "é",
    "😀" * 30,
    "x" * 74 + "é" * 10,
]


@pytest.mark.parametrize("text", FIXED)
def test_a_header_is_what_the_standard_library_writes(text: str):
    for maxlinelen in (76, 78, 20):
        expected = Header(text, "utf-8", maxlinelen=maxlinelen).encode()
        assert Header(text, UTF8, maxlinelen=maxlinelen).encode() == expected


def test_headers_over_random_texts():
    for text in _texts(16, 1500):
        assert (
            Header(text, UTF8, maxlinelen=76).encode()
            == Header(text, "utf-8", maxlinelen=76).encode()
        )


def test_names_over_random_texts():
    for text in [*FIXED, *_texts(17, 1500)]:
        expected = formataddr((text, "c@x.example"), charset="utf-8")
        assert formataddr((text, "c@x.example"), charset=UTF8) == expected


def test_a_text_that_cannot_be_encoded_fails_as_it_does_in_the_standard_library():
    with pytest.raises(UnicodeEncodeError):
        Header("a\udcff", "utf-8").encode()
    with pytest.raises(UnicodeEncodeError):
        Header("a\udcff", UTF8).encode()
