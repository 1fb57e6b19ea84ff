"""The addresses a message's headers say it was delivered to.  Pure.

Where a VERP address shows when the envelope does not carry it (IMAP, the pipe): the
delivery headers, then To. Light on imports: the parse processes work it out ahead
(pipeline/prepare.py), the bounce step from the message when they could not.
"""

from __future__ import annotations

from mailgate.parse.message import Parsed

ADDRESS_HEADERS = ("to", "delivered-to", "x-original-to", "envelope-to", "x-envelope-to")
_ADDRESS_HEADER_NAMES = frozenset(ADDRESS_HEADERS)


def header_recipients(p: Parsed) -> tuple[str, ...]:
    """The addresses of the delivery headers (in ADDRESS_HEADERS order, each header's in
    its order), then of To: lowercased, once each, only those with an "@"."""
    found: dict[str, list[str]] = {}
    for name, value in p.headers:  # one pass over the headers
        if name in _ADDRESS_HEADER_NAMES:
            found.setdefault(name, []).append(value)
    out: list[str] = []
    for name in ADDRESS_HEADERS:
        for v in found.get(name, ()):
            out += [a.strip(" <>") for a in v.split(",")]
    out += p.to
    return tuple(dict.fromkeys(a.lower() for a in out if "@" in a))
