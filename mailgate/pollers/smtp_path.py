"""The common form of a MAIL FROM / RCPT TO path, read without RFC 5322's parser.  Pure.

aiosmtpd reads every path with `email._header_value_parser` (and defines a class on every
call): on the daemon's event loop that was 40 % of an SMTP session's CPU. Nearly every
path a client sends is `<local@domain>` with a dot-atom local part and a host name, then
maybe parameters; for exactly those this returns what aiosmtpd's `_getaddr` returns
(tests/unit/test_smtp_path.py compares the two), and None for everything else, which
aiosmtpd then reads as before (`<>`, quoted or non-ASCII local parts, address literals,
source routes, comments, no angle brackets).
"""

from __future__ import annotations

import re

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE = re.compile(
    rf"<({_ATEXT}(?:\.{_ATEXT})*)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>[ \t]*(.*)", re.DOTALL
)


def simple_path(arg: str, local_part_limit: int = 0) -> tuple[str | None, str | None] | None:
    """(address, the rest: the parameters) of a simple path, as aiosmtpd's `_getaddr`
    returns them ((None, None): a local part over the limit); None: not a simple path."""
    m = _SIMPLE.fullmatch(arg)
    if m is None:
        return None
    local, domain, rest = m.groups()
    if rest[:1] in ("(", "\r", "\n"):
        return None  # a comment or a line break after the path: the parser's to read
    if local_part_limit and len(local) > local_part_limit:
        return None, None
    return f"{local}@{domain}", rest
