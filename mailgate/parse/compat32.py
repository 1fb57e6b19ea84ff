"""The stdlib parser as this stage uses it: compat32, message/* parts kept whole.

A single-part message with a well-formed header block (nearly all mail) is built here
without the feed parser, as the feed parser builds it (its header splitting and the
compat32 policy's `header_source_parse`, the rest as the payload): a sixth of its cost.
So is a one-level multipart whose parts are such (`_one_level_multipart`). Anything else
(nested multiparts, a delivery status, an mbox "From " line, a header line the feed
parser would take as a defect, no blank line) goes to the feed parser.
`tests/unit/test_compat32.py` and `test_compat32_multipart.py` compare both.
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
_BLANK_LINE_RE = re.compile(_EOL)  # (matched at a line start: an empty line)
_MULTIPART_CTES = ("7bit", "8bit", "binary")  # any other: a defect of the feed parser's
_DIGEST = "multipart/digest"  # its parts default to message/rfc822


class Compat32Message(Message):
    """compat32 Message; the parser keeps message/* parts whole instead of parsing them."""

    def get_content_maintype(self) -> str:
        """Hide "message" from the feedparser, which recurses into such parts."""
        maintype = super().get_content_maintype()
        return "x-enclosed" if maintype == "message" else maintype


def parse_tree(data: bytes, defects: list[str]) -> Message:
    """The compat32 parse; on failure the header block alone, or an empty message."""
    try:
        fast = fast_tree(data)
        if fast is not None:
            return fast
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
    head = _head(data)
    if head is None or head[0].get_content_type().startswith("multipart/"):
        return None
    return _tree(*head)


def fast_tree(data: bytes) -> Message | None:
    """What the feed parser makes of a message with a clean header block, single-part or
    a one-level multipart (`_one_level_multipart`); None: leave it to the feed parser."""
    head = _head(data)
    return None if head is None else _tree(*head)


def _head(data: bytes) -> tuple[Message, str, int] | None:
    """The message with its clean header block set, its text and where its body starts;
    None: a header line the feed parser would not take as it is, or no blank line."""
    text = data.decode("ascii", "surrogateescape")  # as BytesParser decodes
    msg = Compat32Message(policy=_COMPAT32)
    pos = _header_fields(msg, text, 0, len(text))
    blank = _BLANK_LINE_RE.match(text, pos)
    if not pos or blank is None:
        return None
    return msg, text, blank.end()


def _tree(msg: Message, text: str, start: int) -> Message | None:
    ctype = msg.get_content_type()  # what the feed parser asks next
    if ctype.startswith("multipart/"):
        return _one_level_multipart(msg, text, start)
    if ctype == "message/delivery-status":
        return None
    msg.set_payload(text[start:])
    return msg


def _header_fields(msg: Message, text: str, pos: int, end: int) -> int:
    """Set the clean fields of text[pos:end] on `msg`; the offset after the last one."""
    # a scanner's match() goes on where its last match ended (re's \G); appending to the
    # list set_raw appends to spares a method call per field
    append = msg._headers.append
    m = None
    for m in iter(_FIELD_RE.scanner(text, pos, end).match, None):
        append((m[1], m[2].rstrip("\r\n")))  # compat32 header_source_parse
    return pos if m is None else m.end()


def _one_level_multipart(msg: Message, text: str, start: int) -> Message | None:
    """The feed parser's tree of a multipart (not a digest) whose parts are single-part
    with clean header blocks, between a first and a closing delimiter line; None: any
    other multipart. (The feed parser compiles a pattern for each new boundary: most of
    the cost of a small multipart message.)"""
    boundary = msg.get_boundary()
    cte = str(msg.get("content-transfer-encoding", "8bit")).lower()
    if not boundary or cte not in _MULTIPART_CTES or msg.get_content_type() == _DIGEST:
        return None
    lines = _delimiter_lines(text, start, "--" + boundary)
    if lines is None:
        return None
    if lines[0][0] > start:  # the preamble, without the line end the delimiter owns
        msg.preamble = _without_eol(text[start : lines[0][0]])
    for (_, body_start), (end, _) in zip(lines, lines[1:], strict=False):
        part = Compat32Message(policy=_COMPAT32)
        pos = _header_fields(part, text, body_start, end)
        blank = _BLANK_LINE_RE.match(text, pos, end)
        if blank is None:
            return None
        ctype = part.get_content_type()
        if ctype.startswith("multipart/") or ctype == "message/delivery-status":
            return None
        part.set_payload(_without_eol(text[blank.end() : end]))
        msg.attach(part)
    msg.epilogue = text[lines[-1][1] :]
    return msg


def _delimiter_lines(text: str, start: int, separator: str) -> list[tuple[int, int]] | None:
    """(start, end with its line end) of each delimiter line of the multipart, the closing
    one last; None: no first or closing delimiter, or two delimiter lines in a row."""
    lines: list[tuple[int, int]] = []
    i = text.find(separator, start)
    while i >= 0:
        if i == start or text[i - 1] in "\r\n":
            after = i + len(separator)
            eol = _BLANK_LINE_RE.search(text, after)
            stop = eol.start() if eol is not None else len(text)
            rest = text[after:stop]
            close = rest.startswith("--")
            if not (rest[2:] if close else rest).strip(" \t"):  # the feed parser's pattern
                if (close and not lines) or (lines and lines[-1][1] == i):
                    return None
                lines.append((i, eol.end() if eol is not None else stop))
                if close:
                    return lines
        i = text.find(separator, i + 1)
    return None


def _without_eol(value: str) -> str:
    """`value` without its last line end (RFC 2046: it belongs to the delimiter)."""
    if value.endswith("\r\n"):
        return value[:-2]
    return value[:-1] if value.endswith(("\r", "\n")) else value
