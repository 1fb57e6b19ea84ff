"""outgoing/compose.py's shortcuts make what the long way makes: the body's encoding chosen
from the text's length when it is short, the addresses remembered, a UTC second's Date
header kept, header text without a control character left to `strip`."""

from __future__ import annotations

import quopri
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime, formataddr

import pytest

from mailgate.outgoing import compose


def _body_the_long_way(text: str) -> tuple[str, bytes]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    if text.isascii() and all(len(line) < 990 for line in text.split("\n")):
        return "7bit", text.replace("\n", "\r\n").encode("ascii")
    return "quoted-printable", quopri.encodestring(text.encode("utf-8")).replace(b"\n", b"\r\n")


@pytest.mark.parametrize("size", [0, 1, 988, 989, 990, 991, 2000])
@pytest.mark.parametrize("shape", ["one line", "two lines", "many lines", "crlf", "non-ascii"])
def test_the_body_is_encoded_as_the_long_way_encodes_it(size: int, shape: str):
    line = "x" * size
    text = {
        "one line": line,
        "two lines": f"short\n{line}",
        "many lines": "\n".join([line[: size // 3]] * 3 + [line]),
        "crlf": f"a\r\n{line}\r\nb",
        "non-ascii": f"é{line}",
    }[shape]
    assert compose._body(text) == _body_the_long_way(text)


def test_the_body_over_random_texts():
    rnd = random.Random(16)
    for _ in range(2000):
        lines = [
            "y" * rnd.choice([0, 5, 500, 988, 989, 990, 1200]) for _ in range(rnd.randint(1, 4))
        ]
        text = rnd.choice(["\n", "\r\n", "\r"]).join(lines) + rnd.choice(["", "\n"])
        assert compose._body(text) == _body_the_long_way(text)


@pytest.mark.parametrize(
    ("name", "addr"),
    [
        ("", "a@x.example"),
        ("Ann Example", "a@x.example"),
        ("Ünïcode Näme", "a@x.example"),
        ('Quote "me", please', "a@x.example"),
        ("Bad\r\nName", "a@x.example\r\n"),
        ("Jörg", "jörg@bücher.example"),
    ],
)
def test_a_remembered_address_is_what_it_was_made_as(name: str, addr: str):
    made = compose._address.__wrapped__(name, addr)
    assert compose._address(name, addr) == made
    assert compose._address(name, addr) == made  # from the cache


@pytest.mark.parametrize(
    "name",
    ["Ünïcode Näme", "Jörg", "日本語の名前", "Zoë " * 30, 'Ünï "quoted", <x>', "€", "a\u00a0b"],
)
def test_a_name_not_in_ascii_is_what_formataddr_writes(name: str):
    expected = formataddr((compose.header_text(name), "a@x.example"), charset="utf-8")
    assert compose._address.__wrapped__(name, "a@x.example") == expected


def test_the_date_header_of_a_burst_is_what_email_utils_writes():
    """The kept UTC second is used for that second only: not for the next, nor for the same
    instant in another zone, nor after a mail of another zone."""
    zones = (UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(0)), None)
    start = datetime(2026, 12, 31, 23, 59, 58, 100_000, tzinfo=UTC)
    for step in range(40):  # 250 ms apart: over a minute, an hour, a day and a year's end
        at = start + timedelta(milliseconds=250 * step)
        for zone in zones[: 1 + step % len(zones)]:
            dt = at.astimezone(zone) if zone else at.replace(tzinfo=None)
            assert compose.date_header(dt) == format_datetime(dt), dt
    back = start - timedelta(seconds=1)
    assert compose.date_header(back) == format_datetime(back)  # the clock went back


_UNSAFE_LONG_WAY = re.compile(r"[\x00-\x1f\x7f]+")


@pytest.mark.parametrize(
    "value",
    [
        "",
        " plain subject ",
        "Re: Drucker kaputt – schon wieder",
        "tab\there",
        "cr\rlf\n",
        "\x00nul and \x7fdel",
        "\x85next line\u2028separator\u00a0nbsp",  # not printable, not control characters
        "\u200bzero width\ufeff",
        "\U0001f600 emoji",
    ],
)
def test_header_text_is_the_regex_substitution(value: str):
    assert compose.header_text(value) == _UNSAFE_LONG_WAY.sub(" ", value).strip()
