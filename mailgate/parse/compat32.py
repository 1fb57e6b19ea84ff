"""The stdlib parser as this stage uses it: compat32, message/* parts kept whole.

A single-part message with a well-formed header block (nearly all mail) is built here
without the feed parser, as the feed parser builds it (its header splitting and the
compat32 policy's `header_source_parse`, the rest as the payload): a sixth of its cost.
Anything else (multipart, a delivery status, an mbox "From " line, a header line the
feed parser would take as a defect, no blank line) goes to the feed parser.
`tests/unit/test_compat32.py` compares both on tricky header blocks.
"""

from __future__ import annotations

import logging
import re
from email import policy as email_policy
from email.message import Message
from email.parser import BytesParser

log = logging.getLogger(__name__)

_COMPAT32 = email_policy.compat32
_EOL = r"(?:\r\n|\r(?!\n)|\n)"  # the feed parser's line ends
# a field: its name (the feed parser's headerRE), the value after the colon and its
# leading blanks, through its continuation lines
# (possessive: a last line without its line end fails in one pass, not one per blank)
_FIELD_RE = re.compile(
    rf"([\x21-\x39\x3b-\x7e]++):[ \t]*+([^\r\n]*+{_EOL}(?:[ \t][^\r\n]*+{_EOL})*+)"
)
_BLANK_LINE_RE = re.compile(_EOL)


class Compat32Message(Message):
    """compat32 Message; the parser keeps message/* parts whole instead of parsing them."""

    def get_content_maintype(self) -> str:
        """Hide "message" from the feedparser, which recurses into such parts."""
        maintype = super().get_content_maintype()
        return "x-enclosed" if maintype == "message" else maintype


def parse_tree(data: bytes, defects: list[str]) -> Message:
    """The compat32 parse; on failure the header block alone, or an empty message."""
    try:
        single = single_part(data)
        if single is not None:
            return single
        return BytesParser(_class=Compat32Message, policy=_COMPAT32).parsebytes(data)
    except Exception as exc:  # RecursionError and friends: fall back to the header block
        log.debug("full parse failed (%r), retrying headers only", exc)
        defects.append(f"MIME structure not parsed ({type(exc).__name__}); header block only")
    try:
        return parse_header_block(data)
    except Exception as exc:
        defects.append(f"header block not parsed ({type(exc).__name__})")
        return Compat32Message()


def parse_header_block(data: bytes) -> Message:
    """The header block of `data` alone (may raise, like the stdlib parser)."""
    return BytesParser(_class=Compat32Message, policy=_COMPAT32).parsebytes(data, headersonly=True)


def single_part(data: bytes) -> Message | None:
    """What the feed parser makes of a single-part message with a clean header block, or
    None: not such a message."""
    text = data.decode("ascii", "surrogateescape")  # as BytesParser decodes
    msg = Compat32Message(policy=_COMPAT32)
    pos = 0
    while (m := _FIELD_RE.match(text, pos)) is not None:
        msg.set_raw(m.group(1), m.group(2).rstrip("\r\n"))  # compat32 header_source_parse
        pos = m.end()
    blank = _BLANK_LINE_RE.match(text, pos)
    if not pos or blank is None:
        return None
    ctype = msg.get_content_type()  # what the feed parser asks next
    if ctype.startswith("multipart/") or ctype == "message/delivery-status":
        return None
    msg.set_payload(text[blank.end() :])
    return msg
