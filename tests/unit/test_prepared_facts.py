"""The facts the parse processes work out for the thread and bounce steps (the subject's
ticket tag, the delivery headers' addresses) are what the worker works out itself from
the message: over the test corpus, under several envelopes, and for crafted headers.
The reference is the bounce step's candidate list as it was written before
(`_verp_candidates_before`), so a change of order, case or duplicates fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgate.parse.message import Parsed
from mailgate.pipeline.delivered_to import header_recipients
from mailgate.pipeline.machine_mail import verp_candidates
from mailgate.pipeline.prepare import prepare
from mailgate.pipeline.thread import tag_number
from mailgate.spool import Envelope

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
FILES = sorted(CORPUS.rglob("*.eml"))
ENVELOPES = (
    Envelope(source="pipe", queue="support"),
    Envelope(source="smtp", rcpt_tos=("Support@Example.test", "no-at-sign")),
    Envelope(source="smtp", rcpt_tos=("bounces+17.0123456789ab@example.test", "SUPPORT@x.org")),
)
_HEADERS_BEFORE = ("to", "delivered-to", "x-original-to", "envelope-to", "x-envelope-to")


def _verp_candidates_before(envelope: Envelope, p: Parsed) -> list[str]:
    out = list(envelope.rcpt_tos)
    found: dict[str, list[str]] = {}
    for name, value in p.headers:
        if name in _HEADERS_BEFORE:
            found.setdefault(name, []).append(value)
    for name in _HEADERS_BEFORE:
        for v in found.get(name, ()):
            out += [a.strip(" <>") for a in v.split(",")]
    out += list(p.to)
    return [a for a in dict.fromkeys(a.lower() for a in out if "@" in a)]


def test_the_corpus_has_messages_with_several_delivery_addresses():
    prepared = [prepare(f.read_bytes()) for f in FILES]
    assert len(FILES) > 100
    assert sum(len(p.header_recipients) > 1 for p in prepared if p.parsed) > 5


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_facts_ahead_are_the_workers_own(path: Path):
    pre = prepare(path.read_bytes())
    if pre.parsed is None:
        assert (pre.tag, pre.header_recipients) == (None, ())
        return
    p = pre.parsed
    assert pre.tag == tag_number(p.subject)
    assert pre.header_recipients == header_recipients(p)
    for envelope in ENVELOPES:
        before = _verp_candidates_before(envelope, p)
        assert verp_candidates(envelope, p, pre.header_recipients) == before
        assert verp_candidates(envelope, p) == before


CRAFTED = (
    b"From: MAILER-DAEMON@mx.example.org\r\n"
    b"X-Envelope-To: <Bounces+9.abcdefabcdef@Example.TEST>\r\n"
    b'To: Support <support@example.test>, "Bob, B." <bob@b.example>\r\n'
    b"Delivered-To: bounces+9.abcdefabcdef@example.test\r\n"
    b"Envelope-To: undisclosed-recipients\r\n"
    b"X-Original-To: <SUPPORT@example.test>, carla@c.example\r\n"
    b"Delivered-To: second@example.test\r\n"
    b"Subject: Re: [support #4711] Undelivered Mail\r\n"
    b"Message-ID: <crafted@mx.example.org>\r\n"
    b"\r\n"
    b"The mail could not be delivered.\r\n"
)


def test_crafted_delivery_headers_in_the_order_case_and_once_each():
    pre = prepare(CRAFTED)
    assert pre.parsed is not None and pre.tag == 4711
    # the raw header values split at commas (a display name stays on its address, as
    # before), then To's parsed addresses
    assert pre.header_recipients == (
        "support <support@example.test",
        'b." <bob@b.example',
        "bounces+9.abcdefabcdef@example.test",
        "second@example.test",
        "support@example.test",
        "carla@c.example",
        "bob@b.example",
    )
    for envelope in ENVELOPES:
        expected = _verp_candidates_before(envelope, pre.parsed)
        assert verp_candidates(envelope, pre.parsed, pre.header_recipients) == expected
