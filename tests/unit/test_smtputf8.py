"""Outgoing mail to internationalised addresses: UTF-8 headers only when needed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailgate.outgoing.compose import compose
from mailgate.outgoing.smtputf8 import needs_smtputf8


def _mail(to_name: str, to_addr: str) -> bytes:
    return compose(
        from_addr="support@example.test",
        from_name="Support",
        to=((to_name, to_addr),),
        subject="Grüße",
        body="Hallo\n",
        message_id="<m@x>",
        date=datetime(2026, 1, 1, tzinfo=UTC),
        hostname="h.example.test",
    )


@pytest.mark.parametrize(
    ("name", "addr", "wanted"),
    [
        ("José", "josé@example.com", b"To: =?utf-8?b?Sm9zw6k=?= <jos\xc3\xa9@example.com>\r\n"),
        ("", "josé@example.com", b"To: jos\xc3\xa9@example.com\r\n"),
        ("Ann, B", "ann@example.com", b'To: "Ann, B" <ann@example.com>\r\n'),
        ("", "用户@例子.广告", "To: 用户@例子.广告\r\n".encode()),
    ],
)
def test_compose_writes_utf8_addresses_raw_and_names_encoded(name, addr, wanted):
    raw = _mail(name, addr)
    assert wanted in raw
    assert needs_smtputf8("", [addr], raw) == (not addr.isascii())


def test_an_ascii_message_needs_no_smtputf8_even_with_an_8bit_body():
    raw = _mail("Ann", "ann@example.com") + "Grüße im Text".encode()
    assert raw.split(b"\r\n\r\n", 1)[0].isascii()
    assert not needs_smtputf8("", ["ann@example.com"], raw)
    assert needs_smtputf8("bounce@exämple.com", ["ann@example.com"], raw)
