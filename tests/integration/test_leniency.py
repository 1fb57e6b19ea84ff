"""Leniency a person would expect: long lines at SMTP/LMTP, a damaged first header line."""

from __future__ import annotations

import smtplib

import pytest

from mailgate.parse.message import parse
from tests.harness import load, message, running, tickets, wait_until, write_config

LONG = "x" * 5000


@pytest.mark.parametrize("mode", ["smtp", "lmtp"])
def test_lines_over_1000_octets_are_taken_not_refused(tmp_path, mode):
    cfg = load(write_config(tmp_path, mode=mode))
    raw = message(body=f"Hello,\n{LONG}\n")
    with running(cfg) as d:
        cls = smtplib.LMTP if mode == "lmtp" else smtplib.SMTP
        with cls("127.0.0.1", d.port, timeout=10) as s:
            refused = s.sendmail("customer@example.com", ["support@example.test"], raw)
        assert refused == {}
        ts = wait_until(lambda: tickets(d.engine))
    assert LONG in ts[0].articles[0].body_text


@pytest.mark.parametrize(
    "first",
    [b"\x00\x01\xff binary junk", b"ceived from mx.example.org by relay (cut off)", b">From x"],
)
def test_damaged_first_header_line_is_skipped_when_a_usable_block_follows(first):
    raw = first + b"\r\nFrom: Ann <ann@example.org>\r\nTo: support@example.test\r\n"
    raw += b"Subject: still readable\r\n\r\nbody\r\n"
    p = parse(raw)
    assert (p.from_addr, p.subject, p.text) == ("ann@example.org", "still readable", "body\n")
    assert any("damaged first header line" in d for d in p.defects)
