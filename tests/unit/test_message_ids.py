"""addresses.message_ids keeps its reading: ids in angle brackets with their blanks taken
out, or bare tokens with an '@' when none is bracketed."""

from __future__ import annotations

import re

import pytest

from mailgate.parse.addresses import _ANGLE_ID_RE, _ID_OK_RE, message_ids


def _plain(value: str) -> tuple[str, ...]:
    """The reading before findall (main at ba9641d)."""
    if not value:
        return ()
    ids: list[str] = []
    if "<" in value:
        for m in _ANGLE_ID_RE.finditer(value):
            inner = "".join(m.group(1).split())
            if inner and _ID_OK_RE.fullmatch(inner):
                ids.append(f"<{inner}>")
    if not ids:
        for token in re.split(r"[\s,]+", value):
            token = token.strip("<>\"'")
            if "@" in token and _ID_OK_RE.fullmatch(token):
                ids.append(f"<{token}>")
    return tuple(dict.fromkeys(ids))


VALUES = [
    "<a@b>",
    "<a@b> <c@d>\t<a@b>",
    "< a @ b >",
    "<a\u00a0@b\u2003>",
    "<>",
    "< >",
    "<" + "x" * 995 + ">",
    "<" + "x" * 996 + ">",
    "<" + "x" * 990 + " " * 20 + "y>",
    "<a\x01b@c>",
    "<a<b@c>",
    "a@b, c@d",
    "'a@b' \"c@d\" <>",
    "no id at all",
    "<a@b",
    "",
]


@pytest.mark.parametrize("value", VALUES)
def test_message_ids_read_as_the_plain_reading(value: str) -> None:
    assert message_ids(value) == _plain(value)
