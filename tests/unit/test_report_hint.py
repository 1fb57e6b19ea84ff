"""bounces/report_hint.has_report_part: a Content-Type naming a report type, in any case."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailgate.bounces.report_hint import has_report_part

DATA = Path(__file__).resolve().parent.parent / "data"
# the reading it replaced: one case-blind search over the raw bytes
CASE_BLIND = re.compile(
    rb"content-type:\s*(multipart/report|message/(global-)?delivery-status"
    rb"|message/disposition-notification|message/feedback-report)",
    re.IGNORECASE,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Content-Type: multipart/report; report-type=delivery-status\n\nx", True),
        (b"CONTENT-TYPE:MULTIPART/REPORT\n\n", True),
        (b"content-type:\r\n  message/delivery-status\r\n\r\n", True),
        (b"Content-Type: message/global-delivery-status\n", True),
        (b"Content-type: Message/Disposition-Notification\n", True),
        (b"Content-Type: message/feedback-report\n", True),
        (
            b"Subject: x\n\n--b\nContent-Type: text/plain\n\n"
            b"--b\nContent-Type: message/delivery-status\n",
            True,
        ),
        (b"Content-Type: text/plain\n\nour delivery-status and multipart/report pages\n", False),
        (b"Content-Type: message/rfc822\n\nContent-Type : message/delivery-status\n", False),
        (b"X-Content-Type: multipart/reports\n", True),  # as the regex: a prefix of the name
        (b"Content-Type: multipart/mixed\n", False),
        (b"content-type:", False),
        (b"", False),
    ],
)
def test_report_part(raw: bytes, expected: bool) -> None:
    assert has_report_part(raw) is expected
    assert (CASE_BLIND.search(raw) is not None) is expected


def test_same_as_the_case_blind_search_on_every_test_message() -> None:
    files = [p for p in DATA.rglob("*") if p.is_file()]
    assert len(files) > 150
    found = 0
    for path in files:
        raw = path.read_bytes()
        expected = CASE_BLIND.search(raw) is not None
        assert has_report_part(raw) is expected, path
        found += expected
    assert found > 5  # the corpus holds real reports
