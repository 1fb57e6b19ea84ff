"""prescan.bound_work: a message with no more lines than `max_parts` is not searched for
delimiter lines (it cannot hold more), and every message is cut as the full count cuts it."""

from __future__ import annotations

import itertools

import pytest

from mailgate.parse.limits import ParseLimits
from mailgate.parse.prescan import _cap_structure, bound_work


def multipart(parts: int, nl: bytes = b"\n") -> bytes:
    head = [b"From: a@example.test", b"Content-Type: multipart/mixed; boundary=b", b""]
    body = [line for _ in range(parts) for line in (b"--b", b"", b"x")] + [b"--b--"]
    return nl.join(head + body) + nl


def counted_cut(data: bytes, limits: ParseLimits) -> bytes:
    """bound_work's result by counting the delimiter lines always (no cut by lines)."""
    lowered = data.lower()
    nl = b"\n" if b"\n" in data else b"\r"
    if lowered.count(b"boundary") <= limits.max_depth and lowered.count(nl + b"--") <= (
        limits.max_parts
    ):
        return data
    return _cap_structure(data, lowered, limits, [])


@pytest.mark.parametrize("nl", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_cut_as_by_counting_delimiters_around_the_line_count(nl: bytes):
    for parts, max_parts in itertools.product(range(6), range(1, 24)):
        data = multipart(parts, nl)
        limits = ParseLimits(max_parts=max_parts)
        defects: list[str] = []
        assert bound_work(data, limits, defects) == counted_cut(data, limits), (parts, max_parts)
        cut = any(d.startswith(f"more than {max_parts} parts") for d in defects)
        assert cut == (parts > max_parts)


def test_delimiters_only_lines_still_cut():
    data = b"Content-Type: multipart/mixed; boundary=b\n\n" + b"--b\n" * 5 + b"--b--\n"
    for max_parts in range(1, 9):
        defects: list[str] = []
        limits = ParseLimits(max_parts=max_parts)
        assert bound_work(data, limits, defects) == counted_cut(data, limits)
