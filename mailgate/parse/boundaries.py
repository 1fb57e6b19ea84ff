"""A multipart whose declared boundary matches no delimiter line (an unclosed quote, a
mistyped boundary): re-read with the boundary its first delimiter line actually uses."""

from __future__ import annotations

import re
from email.message import Message

from mailgate.parse.compat32 import parse_tree

_FIRST_DELIMITER_RE = re.compile(rb"^--([^\s\"][^\r\n\"]{0,69}?)[ \t]*\r?$", re.M)


def reread_multipart(part: Message, ctype: str, defects: list[str]) -> list[Message]:
    """The parts of a multipart the stdlib could not split, or [] if no delimiter is found."""
    payload = part.get_payload()
    if not isinstance(payload, str) or not payload.strip():
        return []
    data = payload.encode("ascii", "surrogateescape")
    m = _FIRST_DELIMITER_RE.search(data)
    if m is None:
        return []
    boundary = m.group(1)
    if boundary.endswith(b"--") and data.count(b"--" + boundary[:-2]) < 2:
        return []  # only a closing line: nothing to split
    head = b'Content-Type: %s; boundary="%s"\r\n\r\n' % (ctype.encode("ascii"), boundary)
    tree = parse_tree(head + data, defects)
    children = tree.get_payload()
    if not tree.is_multipart() or not isinstance(children, list):
        return []
    shown = boundary.decode("ascii", "backslashreplace")
    defects.append(f"multipart boundary not found as declared: re-read with {shown!r}")
    return [c for c in children if isinstance(c, Message)]
