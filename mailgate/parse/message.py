"""Pure parse stage: raw message bytes -> `Parsed` (limits on size, parts, depth; defects kept).

Parser choice, from numbers measured with `bench/parse_speed.py` on the project's 2-core
machine (Python 3.11.7; shared with other work, load about 3, so +-30%), per message:

======================  ===================================  ================================
                        generated corpus (2,000 helpdesk     real-world corpus (163 files,
                        mails, gen_corpus.py -n 2000)        9.7 MB, tests/data/corpus)
======================  ===================================  ================================
mail-parser 4.8.0       1.06 ms mean, p50 1.04, p99 1.84     9.6 ms mean, p50 1.31, max 843
stdlib policy.default   0.99 ms mean, p50 0.80, p99 3.50     (not measured on all files)
stdlib compat32 alone   0.15 ms mean, p50 0.13, p99 0.69     3.8 ms mean, p50 0.32, max 363
this module, all of it  0.36 ms mean, p50 0.32, p99 1.08     4.3 ms mean, p50 0.66, max 228
======================  ===================================  ================================

mail-parser costs more than the whole budget of a typical message (target well under
0.5 ms), so the hot path is `BytesParser(policy=compat32)` plus our own careful decoding
(headers, RFC 2047, charsets, MIME walk). mail-parser is kept where it adds value: as an
independent second opinion when our body walk fails on a message (a bug, not a policy), so
such a message still yields text, HTML and attachments. (In that rare path mail-parser may
log through its own ``mailparser`` logger.) The raw bytes are never changed or dropped
here: the caller keeps them; `raw_sha256` names them.

Work is bounded: the stdlib parser costs about 2 us per line and 40 us per part, is
quadratic in multipart nesting and overflows the stack near 1,000 levels, so the bytes it
is handed are first cut by a linear pre-scan (`_bound_work`: header block at 10,000 lines,
whole message at max(500,000, max_bytes / 50) lines, parts after ``max_parts``, multiparts
deeper than ``max_depth + 1`` neutralised), message/* parts are kept whole instead of
parsed (a `Message` subclass hides their type from the parser), header values are cut at
64 KiB, the HTML rendering is linear. Whatever is cut is recorded in `defects` and stays in
the raw bytes. Worst cases measured on 7-24 MB hostile messages: under 2 s each.

Choices where the contract leaves room: `text` is the first inline text/plain part (an
empty one falls back to the HTML rendering), `html` the first inline text/html part;
further inline text/plain or text/html parts become inline attachments (so no content is
lost); other text/* parts (calendar, rfc822-headers...) are attachments; `from_addr` may
be a bare local part ("mailer-daemon") while `to`, `cc` and `reply_to` keep only addresses
with a domain; `content_id` has no angle brackets; format=flowed text is not re-flowed.
"""

from __future__ import annotations

import binascii
import bisect
import codecs
import hashlib
import html as htmllib
import io
import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email import policy as email_policy
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import NamedTuple

log = logging.getLogger(__name__)

__all__ = ["Attachment", "ParseLimits", "ParseRejected", "Parsed", "parse"]


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on the work done for one message."""

    max_bytes: int = 25 * 1024 * 1024
    max_parts: int = 200
    max_depth: int = 10
    max_text_chars: int = 1_000_000


@dataclass(frozen=True)
class Attachment:
    """One attachment (or inline part) with its decoded payload."""

    filename: str
    content_type: str
    data: bytes
    sha256: str
    content_id: str
    inline: bool


@dataclass(frozen=True)
class Parsed:
    """What the later stages need from one message; the raw bytes stay with the caller."""

    raw_sha256: str
    size: int
    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    from_addr: str
    from_name: str
    reply_to: tuple[str, ...]
    to: tuple[str, ...]
    cc: tuple[str, ...]
    date: datetime | None
    return_path: str | None
    headers: tuple[tuple[str, str], ...]
    content_type: str
    text: str
    html: str
    attachments: tuple[Attachment, ...]
    defects: tuple[str, ...]

    def header(self, name: str) -> str:
        """Return the first value of header `name` (case-insensitive), "" if absent."""
        key = name.lower()
        for hname, value in self.headers:
            if hname == key:
                return value
        return ""

    def header_all(self, name: str) -> tuple[str, ...]:
        """Return every value of header `name` (case-insensitive), in order."""
        key = name.lower()
        return tuple(value for hname, value in self.headers if hname == key)


class ParseRejected(Exception):
    """The bytes cannot be treated as mail at all; `reason` says why (goes to the shunt)."""

    def __init__(self, reason: str):
        """Keep the reason, also as the exception message."""
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- constants

_COMPAT32 = email_policy.compat32
_MAX_DEFECTS = 200
_BOM = b"\xef\xbb\xbf"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_LINE_RE = re.compile(rb"[^\r\n]*")
_BLANK_LINES_RE = re.compile(rb"(?:[ \t\x0b\x0c]*(?:\r\n|\r|\n))*")
_EOL_RE = re.compile(rb"\r\n|\r|\n")
# RFC 5322 field name: printable US-ASCII except ":" (and no space), then optional WSP, ":".
_HEADER_LINE_RE = re.compile(rb"[\x21-\x39\x3b-\x7e]{1,200}[ \t]*:")

_FOLD_RE = re.compile(r"(?:\r\n|\r|\n)[ \t]?")
_CTRL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CTRL_TAB_RE = re.compile(r"[\x00-\x1f\x7f]")
_ENCODED_WORD_RE = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_ANGLE_ID_RE = re.compile(r"<([^<>]*)>")
_ID_OK_RE = re.compile(r"[^\s<>\x00-\x1f\x7f]{1,995}")
_ADDR_OK_RE = re.compile(
    r'(?:[^\s<>()\[\],;:\\"@\x00-\x1f\x7f]+|"[^"\\\r\n]*")'
    r"(?:@(?:[^\s<>()\[\],;:\\\"@\x00-\x1f\x7f]+|\[[^\[\]\s\\]+\]))?"
)
_ADDR_SPECIAL_RE = re.compile(r'["():;\\]')
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f\ufffd]")

# Labels that Python does not know, or knows under a narrower codec than mail uses.
_CHARSET_ALIASES = {
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-8-e": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "iso-8859-6-e": "iso8859-6",
    "cseuckr": "cp949",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "gb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "csgb2312": "gb18030",
    "euc-cn": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "big5": "big5hkscs",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "tis-620": "cp874",
    "windows-874": "cp874",
    "x-mac-roman": "mac-roman",
    "x-mac-cyrillic": "mac-cyrillic",
    "x-mac-greek": "mac-greek",
    "x-mac-turkish": "mac-turkish",
    "x-mac-centraleurroman": "mac-latin2",
    "x-mac-ce": "mac-latin2",
    "x-utf8": "utf-8",
    "utf-8-sig": "utf-8",
}
# Text codecs that make no sense as a mail charset (they interpret escapes or punycode).
_CODEC_DENY = frozenset({"unicode-escape", "raw-unicode-escape", "undefined", "idna", "punycode"})
# Codecs whose pure-ASCII input does not decode to the same ASCII text.
_NOT_ASCII_COMPATIBLE = ("utf-16", "utf-32", "utf-7", "iso2022", "hz", "cp037", "cp273", "cp424")
_NOT_ASCII_COMPATIBLE_EXTRA = frozenset({"cp500", "cp875", "cp1026", "cp1140"})
_LATIN1 = frozenset({"iso8859-1", "latin-1"})

_EXTENSIONS = {
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "text/csv": ".csv",
    "text/xml": ".xml",
    "text/markdown": ".md",
    "text/rfc822-headers": ".txt",
    "text/vcard": ".vcf",
    "text/x-vcard": ".vcf",
    "text/enriched": ".txt",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/pjpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
    "image/tiff": ".tif",
    "image/svg+xml": ".svg",
    "image/heic": ".heic",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "audio/wav": ".wav",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/gzip": ".gz",
    "application/x-gzip": ".gz",
    "application/x-bzip2": ".bz2",
    "application/x-tar": ".tar",
    "application/x-7z-compressed": ".7z",
    "application/json": ".json",
    "application/xml": ".xml",
    "application/ics": ".ics",
    "application/rtf": ".rtf",
    "application/msword": ".doc",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
    "application/pgp-encrypted": ".pgp",
    "application/pgp-signature": ".asc",
    "application/pgp-keys": ".asc",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "application/pkcs7-mime": ".p7m",
    "application/x-pkcs7-mime": ".p7m",
    "application/octet-stream": ".bin",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/delivery-status": ".txt",
    "message/global-delivery-status": ".txt",
    "message/disposition-notification": ".txt",
    "message/feedback-report": ".txt",
}
_FILENAME_DROP_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_FILENAME_SUB_RE = re.compile(r'[<>:"|?*]')
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
_MAX_FILENAME = 200

_DATE_RE = re.compile(
    r"\s*(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"\s+([+-])(\d{2})(\d{2})(?:\s*\([^()]*\))?\s*$"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_BODY_TYPES = frozenset({"text/plain", "text/html"})
_ENCLOSED_MESSAGES = frozenset({"message/rfc822", "message/global"})
_MIME_HEADERS = frozenset({"content-type", "content-disposition", "content-id"})
_PARAM_RE = re.compile(r';[ \t\r\n]*([^=;\s]+)[ \t\r\n]*=[ \t\r\n]*("(?:[^"\\]|\\.)*"|[^;]*)')


class _Message(Message):
    """compat32 Message; the parser keeps message/* parts whole instead of parsing them."""

    def get_content_maintype(self) -> str:
        """Hide "message" from the feedparser, which recurses into such parts."""
        maintype = super().get_content_maintype()
        return "x-enclosed" if maintype == "message" else maintype


# --------------------------------------------------------------------------- entry point


def parse(raw: bytes, limits: ParseLimits = ParseLimits()) -> Parsed:
    """Parse raw message bytes; raise only `ParseRejected` (not mail at all, or too big)."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise ParseRejected(f"expected bytes, got {type(raw).__name__}")
    raw = bytes(raw)
    size = len(raw)
    if size == 0:
        raise ParseRejected("empty message")
    if size > limits.max_bytes:
        raise ParseRejected(f"message too large: {size} bytes > limit {limits.max_bytes}")
    start = _header_start(raw)
    raw_sha256 = hashlib.sha256(raw).hexdigest()
    defects: list[str] = []
    if start:
        defects.append(f"skipped {start} leading bytes (BOM or blank lines) before the header")
    try:
        data = raw[start:] if start else raw
        data = _bound_work(data, limits, defects)
        return _build(_stdlib_parse(data, defects), raw_sha256, size, limits, defects)
    except Exception as exc:  # a bug here must not become a crash: keep what is known
        log.debug("parse failed: %r", exc)
        defects.append(f"internal parse error ({type(exc).__name__}: {exc})")
        return _build(_Message(), raw_sha256, size, limits, defects)


def _stdlib_parse(data: bytes, defects: list[str]) -> Message:
    """The compat32 parse; on failure the header block alone, or an empty message."""
    parser = BytesParser(_class=_Message, policy=_COMPAT32)
    try:
        return parser.parsebytes(data)
    except Exception as exc:  # RecursionError and friends: fall back to the header block
        log.debug("full parse failed (%r), retrying headers only", exc)
        defects.append(f"MIME structure not parsed ({type(exc).__name__}); header block only")
    try:
        return parser.parsebytes(data, headersonly=True)
    except Exception as exc:
        defects.append(f"header block not parsed ({type(exc).__name__})")
        return _Message()


def _build(
    msg: Message, raw_sha256: str, size: int, limits: ParseLimits, defects: list[str]
) -> Parsed:
    """Assemble a Parsed from a stdlib message, each stage guarded on its own."""
    try:
        env = _envelope(msg, defects)
    except Exception as exc:
        log.debug("header stage failed: %r", exc)
        defects.append(f"headers not decoded ({type(exc).__name__}: {exc})")
        env = _empty_envelope()
    try:
        ctype = msg.get_content_type()
    except Exception:
        ctype = "text/plain"
    try:
        body = _Body(limits, defects)
        body.walk(msg)
        text, html, attachments = body.result()
    except Exception as exc:
        log.debug("body walk failed: %r; trying mail-parser", exc)
        defects.append(f"body walk failed ({type(exc).__name__}: {exc}); used mail-parser")
        text, html, attachments = _mailparser_body(msg, limits, defects)
    return Parsed(
        raw_sha256=raw_sha256,
        size=size,
        content_type=ctype,
        text=text,
        html=html,
        attachments=tuple(attachments),
        defects=_dedupe_defects(defects),
        **env,
    )


def _dedupe_defects(defects: list[str]) -> tuple[str, ...]:
    """Drop repeated defects, keep order, cap the count."""
    unique = list(dict.fromkeys(defects))
    if len(unique) > _MAX_DEFECTS:
        extra = len(unique) - _MAX_DEFECTS
        unique = unique[:_MAX_DEFECTS] + [f"... and {extra} more defects"]
    return tuple(unique)


# --------------------------------------------------------------------------- rejection rule


def _header_start(raw: bytes) -> int:
    """Offset where the header block starts; raise ParseRejected if there is none."""
    if raw.startswith(_OLE_MAGIC):
        raise ParseRejected("not a MIME message: OLE compound file (Outlook .msg?)")
    pos = 3 if raw.startswith(_BOM) else 0
    blank = _BLANK_LINES_RE.match(raw, pos)
    pos = blank.end() if blank else pos
    line = _LINE_RE.match(raw, pos)
    assert line is not None  # the pattern matches the empty string
    first = line.group()
    if not first.strip():  # every complete blank line is behind pos
        raise ParseRejected("no content: only blank lines")
    candidate = first
    if first.startswith(b"From "):  # mbox envelope line; the stdlib keeps it as unixfrom
        eol = _EOL_RE.match(raw, line.end())
        nxt = _LINE_RE.match(raw, eol.end()) if eol else None
        candidate = nxt.group() if nxt else b""
    if not _HEADER_LINE_RE.match(candidate):
        shown = candidate[:40].decode("ascii", "backslashreplace")
        raise ParseRejected(f"no header block: first line is not a 'Name: value' field: {shown!r}")
    return pos


# --------------------------------------------------------------------------- work bounds

_MAX_HEADER_LINES = 10_000  # a header block longer than this is cut (raw kept)
_MAX_HEADER_CHARS = 65_536  # one header value longer than this is truncated
_MIN_LINE_CAP = 500_000  # the stdlib costs ~2 us per line: cap the lines it sees
# Each pattern starts with a literal, so the scans run at C speed (one alternation: 10x slower).
_DECL_BOUNDARY_RE = re.compile(rb"boundary[ \t]*=[ \t]*(?:\"([^\"\r\n]*)\"|([^\s;\"]+))")
_DELIMITER_RE = re.compile(rb"\n--([^\r\n]*?)[ \t]*\r?(?=\n|\Z)")
_BLANK_RE = re.compile(rb"\n\r?(?=\n)")


def _bound_work(data: bytes, limits: ParseLimits, defects: list[str]) -> bytes:
    """The bytes handed to the stdlib, cut so that parsing stays cheap (see module doc)."""
    nl = b"\n" if b"\n" in data else b"\r"
    lines = data.count(nl)
    if lines > _MAX_HEADER_LINES:
        cut = _nth_line_end(data, nl, _MAX_HEADER_LINES)
        if _blank_line(data, nl, 0, cut) < 0:  # the header block alone is that long
            body = _blank_line(data, nl, cut, len(data))
            data = data[:cut] + (data[body:] if body >= 0 else b"")
            defects.append(
                f"header block longer than {_MAX_HEADER_LINES} lines: the rest not parsed"
            )
            lines = data.count(nl)
    line_cap = max(_MIN_LINE_CAP, limits.max_bytes // 50)
    if lines > line_cap:
        data = data[: _nth_line_end(data, nl, line_cap)]
        defects.append(f"more than {line_cap} lines: the rest not parsed")
    lowered = data.lower()
    if lowered.count(b"boundary") <= limits.max_depth and lowered.count(nl + b"--") <= (
        limits.max_parts
    ):
        return data  # cannot nest deeper, cannot hold more parts than allowed
    return _cap_structure(data, lowered, limits, defects)


def _blank_line(data: bytes, nl: bytes, start: int, end: int) -> int:
    """Offset of the first empty line in data[start:end] (just after a line end), or -1."""
    if nl == b"\r":
        i = data.find(b"\r\r", start, end)
        return i + 1 if i >= 0 else -1
    found = [
        i for i in (data.find(b"\n\n", start, end), data.find(b"\n\r\n", start, end)) if i >= 0
    ]
    return min(found) + 1 if found else -1


def _nth_line_end(data: bytes, nl: bytes, n: int) -> int:
    """Offset just after the n-th line end."""
    pos = 0
    for _ in range(n):
        pos = data.find(nl, pos) + 1
    return pos


def _cap_structure(data: bytes, lowered: bytes, limits: ParseLimits, defects: list[str]) -> bytes:
    """Neutralise too-deep multiparts and drop the parts after max_parts (linear scan)."""
    # Only header blocks declare multiparts: the top one, and one after each delimiter line
    # of an open multipart, each ending at the next blank line.
    if b"\n" not in lowered:
        lowered = lowered.replace(b"\r", b"\n")  # bare-CR mail: same length, same offsets
    lowered = b"\n" + lowered  # the first line also starts after a newline: offsets + 1
    blanks = [m.start() for m in _BLANK_RE.finditer(lowered)]
    stack: list[bytes] = []  # boundaries of the open multiparts
    neutralise: list[int] = []

    def header_block(start: int) -> None:
        """Read the boundary declarations of the header block starting at `start`."""
        i = bisect.bisect_right(blanks, start)
        stop = blanks[i] if i < len(blanks) else len(lowered)
        for m in _DECL_BOUNDARY_RE.finditer(lowered, start, stop):
            if len(stack) > limits.max_depth:
                neutralise.append(m.start() - 1)
            else:
                stack.append(m.group(1) if m.group(1) is not None else m.group(2))

    header_block(0)
    parts, end = 1, len(data)
    for m in _DELIMITER_RE.finditer(lowered):
        if _close_to(stack, m.group(1)):
            parts += 1
            if parts > limits.max_parts + 1:
                end = m.start() - 1
                break
            header_block(m.end())
    if not neutralise and end == len(data):
        return data
    patched = bytearray(data[:end])
    for offset in neutralise:
        if offset < end:
            patched[offset : offset + 1] = b"X"
    if neutralise:
        defects.append(
            f"nesting deeper than {limits.max_depth + 1} levels: "
            f"{len(neutralise)} multiparts not parsed"
        )
    if end < len(data):
        defects.append(f"more than {limits.max_parts} parts: the rest not parsed")
    return bytes(patched)


def _close_to(stack: list[bytes], delimiter: bytes) -> bool:
    """Pop multiparts above the one this delimiter belongs to; True if a new part opens."""
    for i in range(len(stack) - 1, -1, -1):
        if delimiter == stack[i]:
            del stack[i + 1 :]
            return True
        if delimiter == stack[i] + b"--":
            del stack[i:]
            return False
    return False


# --------------------------------------------------------------------------- headers


def _envelope(msg: Message, defects: list[str]) -> dict:
    """Decode every header and derive the envelope fields of Parsed."""
    items = [(str(name).strip().lower(), value) for name, value in msg.raw_items()]
    headers: list[tuple[str, str]] = []
    allv: dict[str, list[str]] = {}
    for name, value in items:
        if not isinstance(value, str):
            value = str(value)
        if len(value) > _MAX_HEADER_CHARS:
            value = value[:_MAX_HEADER_CHARS]
            defects.append(f"header {name} longer than {_MAX_HEADER_CHARS} chars: truncated")
        if value.isascii() and not _CTRL_TAB_RE.search(value):
            value = value.strip()  # the common case, inlined
        else:
            value = _prepare(value, msg, name, defects)
        headers.append((name, _decode_words(value, defects).strip() if "=?" in value else value))
        if name in allv:
            allv[name].append(value)
        else:
            allv[name] = [value]
    first = {name: values[0] for name, values in allv.items()}
    subject = next((value for name, value in headers if name == "subject"), "")

    from_addr, from_name = "", ""
    if "from" in first:
        addrs = _addresses(" , ".join(allv["from"])[:_MAX_HEADER_CHARS])
        if addrs:
            from_name, from_addr = addrs[0]
            from_name = _clean_name(from_name, defects)
        else:
            defects.append(f"unparseable From: {_short(first['from'])}")

    date = None
    if "date" in first:
        date = _parse_date(first["date"])
        if date is None:
            defects.append(f"unparseable Date: {_short(first['date'])}")

    message_id = ""
    if "message-id" in first:
        ids = _message_ids(first["message-id"])
        message_id = ids[0] if ids else ""
        if not message_id:
            defects.append(f"garbage Message-ID: {_short(first['message-id'])}")

    return {
        "message_id": message_id,
        "in_reply_to": _message_ids(" ".join(allv.get("in-reply-to", ()))),
        "references": _message_ids(" ".join(allv.get("references", ()))),
        "subject": subject,
        "from_addr": from_addr,
        "from_name": from_name,
        "reply_to": _address_list(allv.get("reply-to", ())),
        "to": _address_list(allv.get("to", ())),
        "cc": _address_list(allv.get("cc", ())),
        "date": date,
        "return_path": _return_path(first.get("return-path")),
        "headers": tuple(headers),
    }


def _empty_envelope() -> dict:
    """Envelope fields for a message whose headers could not be read."""
    return {
        "message_id": "",
        "in_reply_to": (),
        "references": (),
        "subject": "",
        "from_addr": "",
        "from_name": "",
        "reply_to": (),
        "to": (),
        "cc": (),
        "date": None,
        "return_path": None,
        "headers": (),
    }


def _short(value: str, n: int = 60) -> str:
    """A value shortened for a defect message."""
    return repr(value if len(value) <= n else value[:n] + "...")


def _safe_charset(part: Message) -> str | None:
    """The part's declared charset label, or None."""
    try:
        return part.get_content_charset()
    except Exception:
        return None


def _prepare(value: object, hint: Message | None, where: str, defects: list[str]) -> str:
    """Unfold a raw header value and decode its 8-bit bytes (encoded-words left alone)."""
    s = value if isinstance(value, str) else str(value)
    if s.isascii() and not _CTRL_TAB_RE.search(s):
        return s.strip()  # the common case
    if "\n" in s or "\r" in s:
        s = _FOLD_RE.sub(" ", s)
    if not s.isascii():
        s = _decode_8bit(s, hint, where, defects)
    return _one_line(s).strip()


def _decode_8bit(s: str, hint: Message | None, where: str, defects: list[str]) -> str:
    """Decode raw 8-bit bytes carried in a surrogate-escaped header string."""
    try:
        data = s.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return s  # already real text
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    label = _safe_charset(hint) if hint is not None else None  # often the body's charset
    codec = _codec(label) if label else None
    if codec and codec not in ("utf-8", "ascii"):
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass
    text, how = _guess_decode(data)
    defects.append(f"8-bit header {where} is not utf-8, decoded as {how}")
    return text


def _guess_decode(data: bytes) -> tuple[str, str]:
    """Decode bytes of unknown charset: utf-8, mostly-utf-8 with replacements, or latin-1."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    sample = data[:65536].decode("utf-8", "replace")
    bad = sample.count("\ufffd")
    if len(_NON_ASCII_RE.findall(sample)) > bad:  # real utf-8 sequences outnumber the bad bytes
        return data.decode("utf-8", "replace"), "utf-8 with replacement characters"
    return data.decode("latin-1"), "latin-1"


def _decode_words(s: str, defects: list[str]) -> str:
    """Decode RFC 2047 encoded-words, also malformed ones (mid-word, split characters)."""
    if "=?" not in s:
        return s
    out: list[str] = []
    buf = bytearray()
    buf_charset = ""
    pos = 0
    prev_word = False

    def flush() -> None:
        """Decode the pending run of same-charset encoded-word bytes."""
        nonlocal buf, buf_charset
        if buf:
            out.append(_decode_bytes(bytes(buf), buf_charset, "encoded-word", defects))
            buf = bytearray()
        buf_charset = ""

    for m in _ENCODED_WORD_RE.finditer(s):
        gap = s[pos : m.start()]
        if gap and not (prev_word and not gap.strip()):
            flush()
            out.append(gap)
        charset = m.group(1).split("*", 1)[0].lower()
        data = _word_bytes(m.group(2), m.group(3))
        pos = m.end()
        if data is None:
            flush()
            defects.append(f"undecodable encoded-word {_short(m.group(0), 40)}")
            out.append(m.group(0))
            prev_word = False
            continue
        if buf_charset and charset != buf_charset:
            flush()
        buf += data
        buf_charset = charset
        prev_word = True
    flush()
    out.append(s[pos:])
    return _one_line("".join(out))


def _one_line(s: str) -> str:
    """Tabs and line breaks become spaces; other control characters are dropped."""
    if "\t" in s or "\n" in s or "\r" in s:
        s = s.replace("\r\n", " ").replace("\r", " ").replace("\n", " ").replace("\t", " ")
    if _CTRL_RE.search(s):
        s = _CTRL_RE.sub("", s)
    return s


def _word_bytes(encoding: str, text: str) -> bytes | None:
    """Bytes of one encoded-word's payload, or None if it cannot be decoded."""
    if encoding in "qQ":
        return binascii.a2b_qp(text.encode("utf-8", "replace"), header=True)
    compact = "".join(text.split())
    compact = compact.rstrip("=")
    if len(compact) % 4 == 1:
        compact = compact[:-1]
    try:
        return binascii.a2b_base64((compact + "=" * (-len(compact) % 4)).encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def _message_ids(value: str) -> tuple[str, ...]:
    """Message ids in a header value, normalized to "<id>", deduplicated, in order."""
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


def _parse_date(value: str) -> datetime | None:
    """A timezone-aware datetime (UTC if no zone), or None if unparseable."""
    m = _DATE_RE.match(value)
    if m is not None:  # the RFC 5322 form nearly every mailer writes
        day, mon, year, hh, mm, ss, sign, oh, om = m.groups()
        month = _MONTHS.get(mon.lower())
        if month is not None:
            try:
                offset = timedelta(hours=int(oh), minutes=int(om))
                tz = timezone(-offset if sign == "-" else offset)
                return datetime(int(year), month, int(day), int(hh), int(mm), int(ss or 0), 0, tz)
            except ValueError:
                pass
    if not value.strip():
        return None
    try:
        dt = parsedate_to_datetime(value)
    except Exception:
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def _return_path(value: str | None) -> str | None:
    """None if absent, "" for the null path "<>", else the lowercased address."""
    if value is None:
        return None
    v = value.strip()
    if "<" in v:
        m = _ANGLE_ID_RE.search(v)
        v = m.group(1) if m else v.replace("<", "")
    v = "".join(v.split())
    if ":" in v:  # source route "@a,@b:user@host"
        v = v.rsplit(":", 1)[1]
    return v.strip("<>").lower()


# --------------------------------------------------------------------------- addresses


def _address_list(values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Lowercased addr-specs (with a domain) from every occurrence of an address header."""
    out: list[str] = []
    budget = _MAX_HEADER_CHARS  # bounds the work on a flood of recipients
    for value in values:
        if budget <= 0:
            break
        value = value[:budget]
        budget -= len(value)
        out.extend(addr for _, addr in _addresses(value) if "@" in addr)
    return tuple(dict.fromkeys(out))


def _addresses(value: str) -> list[tuple[str, str]]:
    """(raw display name, lowercased addr-spec) pairs; invalid entries are skipped."""
    if not value:
        return []
    simple = _ADDR_SPECIAL_RE.search(value) is None
    pieces = _split_simple(value) if simple else _split_complex(value)
    out = []
    for name, addr in pieces:
        addr = addr.strip().lower()
        if ":" in addr and addr.startswith("@"):  # source route
            addr = addr.rsplit(":", 1)[1]
        if addr and len(addr) <= 320 and _ADDR_OK_RE.fullmatch(addr):
            out.append((name.strip(), addr))
    return out


def _split_simple(value: str) -> list[tuple[str, str]]:
    """Split a header without quotes, comments or groups."""
    out = []
    for piece in value.split(","):
        piece = piece.strip()
        if not piece:
            continue
        lt = piece.rfind("<")
        if lt >= 0:
            gt = piece.find(">", lt)
            addr = piece[lt + 1 : gt] if gt > lt else piece[lt + 1 :]
            out.append((piece[:lt], addr))
        else:
            out.append(("", piece))
    return out


def _split_complex(value: str) -> list[tuple[str, str]]:
    """Split an address header with quoted strings, comments, groups and escapes."""
    out: list[tuple[str, str]] = []
    name: list[str] = []
    addr: list[str] = []
    comment: list[str] = []
    plain: list[str] = []  # text outside quotes/comments/angles (a bare addr-spec)
    has_angle = False
    i, n = 0, len(value)

    def finish() -> None:
        """Close the current address."""
        nonlocal has_angle
        if has_angle:
            display = "".join(name).strip() or " ".join(comment).strip()
            out.append((display, "".join(addr)))
        elif "".join(plain).strip():
            out.append((" ".join(comment).strip(), "".join(plain)))
        name.clear(), addr.clear(), comment.clear(), plain.clear()
        has_angle = False

    while i < n:
        c = value[i]
        if c == '"':
            j = i + 1
            chars = []
            while j < n and value[j] != '"':
                if value[j] == "\\" and j + 1 < n:
                    j += 1
                chars.append(value[j])
                j += 1
            name.append("".join(chars))
            plain.append('"' + "".join(chars) + '"')
            i = j + 1
        elif c == "(":
            depth, j = 1, i + 1
            chars = []
            while j < n and depth:
                if value[j] == "\\" and j + 1 < n:
                    j += 1
                elif value[j] == "(":
                    depth += 1
                elif value[j] == ")":
                    depth -= 1
                    if not depth:
                        break
                chars.append(value[j])
                j += 1
            comment.append("".join(chars))
            i = j + 1
        elif c == "<":
            j = value.find(">", i + 1)
            j = n if j < 0 else j
            addr.clear()
            addr.append(value[i + 1 : j])
            has_angle = True
            i = j + 1
        elif c in ",;":
            finish()
            i += 1
        elif c == ":" and not has_angle:  # group "name:" prefix
            name.clear(), comment.clear(), plain.clear()
            i += 1
        else:
            name.append(c)
            plain.append(c)
            i += 1
    finish()
    return out


def _clean_name(name: str, defects: list[str]) -> str:
    """Decoded, unquoted display name."""
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    name = _decode_words(name, defects)
    return " ".join(name.split())


# --------------------------------------------------------------------------- charsets


@lru_cache(maxsize=512)
def _codec(label: str) -> str | None:
    """Python codec name for a mail charset label, or None if unknown/unusable."""
    name = label.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _CODEC_DENY:
        return None
    return info.name


def _ascii_compatible(codec: str) -> bool:
    """True if pure-ASCII bytes decode to the same text in this codec."""
    return not codec.startswith(_NOT_ASCII_COMPATIBLE) and codec not in _NOT_ASCII_COMPATIBLE_EXTRA


def _decode_bytes(data: bytes, label: str | None, where: str, defects: list[str]) -> str:
    """Decode with the declared charset, falling back (utf-8, then latin-1) with a defect."""
    if not data:
        return ""
    codec = _codec(label) if label else None
    if label and codec is None:
        text, how = _guess_decode(data)
        defects.append(f"unknown charset {label}, decoded as {how} ({where})")
        return text
    if codec is None or codec == "ascii":
        if data.isascii():
            return data.decode("ascii")
        text, how = _guess_decode(data)
        declared = f"charset {label}" if label else "no charset"
        defects.append(f"8-bit data with {declared}, decoded as {how} ({where})")
        return text
    if data.isascii() and _ascii_compatible(codec):
        return data.decode("ascii")
    if codec in _LATIN1:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        pass
    except Exception:  # a codec that misbehaves on this input
        defects.append(f"charset {label} failed, decoded as latin-1 ({where})")
        return data.decode("latin-1")
    if codec != "utf-8":
        try:
            text = data.decode("utf-8")
            defects.append(f"data declared {label} is utf-8, decoded as utf-8 ({where})")
            return text
        except UnicodeDecodeError:
            pass
    defects.append(f"invalid {label} bytes replaced ({where})")
    return data.decode(codec, "replace")


# --------------------------------------------------------------------------- body walk


class _Body:
    """Walks the MIME tree within the limits and collects text, html and attachments."""

    def __init__(self, limits: ParseLimits, defects: list[str]):
        """Start an empty walk."""
        self.limits = limits
        self.defects = defects
        self.text: str | None = None
        self.html: str | None = None
        self.attachments: list[Attachment] = []

    def walk(self, root: Message) -> None:
        """Depth-first walk in document order, bounded by max_parts and max_depth."""
        stack: list[tuple[Message, str, int]] = [(root, "", 0)]
        count = 0
        deep_noted = False
        while stack:
            part, path, depth = stack.pop()
            count += 1
            if count > self.limits.max_parts:
                self.defects.append(f"too many parts: kept first {self.limits.max_parts}")
                break
            where = f"part {path}" if path else "message"
            ctype = "?"
            try:
                head = _head(part)
                ctype = head.ctype
                if part.is_multipart() and not ctype.startswith("message/"):
                    if depth >= self.limits.max_depth:
                        if not deep_noted:
                            self.defects.append(
                                f"nesting too deep: parts below depth {self.limits.max_depth} "
                                "skipped"
                            )
                            deep_noted = True
                    else:
                        children = part.get_payload()
                        for i in range(len(children) - 1, -1, -1):
                            if isinstance(children[i], Message):
                                child_path = f"{path}.{i + 1}" if path else str(i + 1)
                                stack.append((children[i], child_path, depth + 1))
                elif ctype.startswith("message/"):
                    self._message(part, head)
                else:
                    self._leaf(part, head, where)
            except Exception as exc:  # one bad part must not cost the others
                log.debug("part %s failed: %r", where, exc)
                self.defects.append(f"{where} ({ctype}) skipped: {type(exc).__name__}: {exc}")
            for defect in getattr(part, "defects", ()):
                self.defects.append(f"{type(defect).__name__} in {where} ({ctype})")

    def _leaf(self, part: Message, head: _Head, where: str) -> None:
        """Classify one non-multipart part as body text, html or attachment."""
        ctype, disposition = head.ctype, head.disposition
        filename = _filename(part, head, self.defects)
        body_type = ctype if ctype in _BODY_TYPES else None
        if ctype.startswith("multipart/"):  # declared multipart without usable boundary
            body_type = "text/plain"
        if disposition == "attachment" or filename or body_type is None:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            self._attach(head, filename, data)
            return
        if body_type == "text/plain" and self.text is None:
            self.text = self._decode_text(part, head, where)
        elif body_type == "text/html" and self.html is None:
            self.html = self._decode_text(part, head, where)
        else:  # a further inline text part: kept as an inline attachment, not lost
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            self._attach(head, filename, data, inline=True)

    def _decode_text(self, part: Message, head: _Head, where: str) -> str:
        """Transfer-decode and charset-decode a text part; LF line ends; no NUL."""
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            data = b""
        text = _decode_bytes(data, _charset(part, head), where, self.defects)
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\x00" in text:
            text = text.replace("\x00", "")
        return text

    def _message(self, part: Message, head: _Head) -> None:
        """Keep an enclosed message/* part whole, as an attachment (not walked for the body)."""
        data = _message_bytes(part, self.defects)
        name = _filename(part, head, self.defects)
        if (not name or name.startswith(".")) and head.ctype in _ENCLOSED_MESSAGES:
            subject = _inner_subject(data, self.defects)
            name = f"{subject}.eml" if subject else name
        self._attach(head, name, data)

    def _attach(self, head: _Head, name: str, data: bytes, inline: bool = False) -> None:
        """Record one attachment with a sanitized filename."""
        index = len(self.attachments) + 1
        disposition, content_id = head.disposition, head.content_id
        inline = inline or disposition == "inline" or (disposition is None and bool(content_id))
        self.attachments.append(
            Attachment(
                filename=_sanitize_filename(name, index, head.ctype),
                content_type=head.ctype,
                data=data,
                sha256=hashlib.sha256(data).hexdigest(),
                content_id=content_id,
                inline=inline,
            )
        )

    def result(self) -> tuple[str, str, list[Attachment]]:
        """Best text, html and the attachments, truncated to max_text_chars."""
        limit = self.limits.max_text_chars
        html = self.html or ""
        if len(html) > limit:
            self.defects.append(f"html truncated at {limit} chars")
            html = html[:limit]
        text = self.text or ""
        if html and not text.strip():  # no (or an empty) text/plain: render the HTML
            text = _html_to_text(html)
        if len(text) > limit:
            self.defects.append(f"text truncated at {limit} chars")
            text = text[:limit]
        return text, html, self.attachments


class _Head(NamedTuple):
    """The MIME headers of one part, read in one pass over its headers."""

    ctype: str
    ctype_params: dict[str, str] | None  # None: not simple, ask the stdlib
    disposition: str | None
    disposition_params: dict[str, str] | None
    content_id: str


def _head(part: Message) -> _Head:
    """Read Content-Type, Content-Disposition and Content-ID of a part once."""
    found: dict[str, str] = {}
    for name, value in part.raw_items():
        key = name.lower()
        if key in _MIME_HEADERS and key not in found:
            found[key] = value if isinstance(value, str) else str(value)
    ctype_params: dict[str, str] | None = {}
    raw_ctype = found.get("content-type")
    if raw_ctype is None:
        ctype = part.get_default_type()
    else:
        main, ctype_params = _split_params(raw_ctype)
        ctype = main if main.count("/") == 1 else "text/plain"  # the compat32 rule
    disposition, disposition_params = None, {}
    raw_disposition = found.get("content-disposition")
    if raw_disposition is not None:
        disposition, disposition_params = _split_params(raw_disposition)
    return _Head(ctype, ctype_params, disposition, disposition_params, _content_id(found))


def _split_params(value: str) -> tuple[str, dict[str, str] | None]:
    """Lowercased main value and its parameters; parameters None if not simple."""
    main, _, rest = value.partition(";")
    main = main.strip().lower()
    if not rest:
        return main, {}
    if not rest.isascii() or "*" in rest or "\\" in rest:
        return main, None  # RFC 2231, raw 8-bit or escapes: the stdlib knows best
    params = {}
    for m in _PARAM_RE.finditer(";" + rest):
        val = m.group(2).strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1]
        params.setdefault(m.group(1).lower(), val)
    return main, params


def _charset(part: Message, head: _Head) -> str | None:
    """Declared charset label, lowercased, or None."""
    if head.ctype_params is not None:
        label = (head.ctype_params.get("charset") or "").strip().lower()
        return label or None
    return _safe_charset(part)


def _filename(part: Message, head: _Head, defects: list[str]) -> str:
    """The declared filename (or name parameter), decoded; "" if none."""
    if head.ctype_params is not None and head.disposition_params is not None:
        name = head.disposition_params.get("filename") or head.ctype_params.get("name") or ""
    else:
        try:
            name = part.get_filename() or ""
            if "\ufffd" in name:  # compat32 masked raw 8-bit bytes: decode them
                name = _filename_8bit(part, defects) or name
        except Exception:
            return ""
    if not name:
        return ""
    return _decode_words(_one_line(str(name)), defects).strip()


def _filename_8bit(part: Message, defects: list[str]) -> str | None:
    """Filename from Content-Disposition/Content-Type headers carrying raw 8-bit bytes."""
    tmp = Message()
    for name, value in part.raw_items():
        if name.lower() in ("content-disposition", "content-type") and name not in tmp:
            tmp[name] = _prepare(value, None, "filename", defects)
    return tmp.get_filename()


def _content_id(found: dict[str, str]) -> str:
    """Content-ID without angle brackets, "" if none."""
    value = found.get("content-id")
    if value is None:
        return ""
    cid = "".join(value.split()).strip("<>")
    if not cid.isascii():
        cid = cid.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _CTRL_RE.sub("", cid)


def _message_bytes(part: Message, defects: list[str]) -> bytes:
    """The bytes of a message/* part: exact for leaves, re-serialized for header blocks."""
    payload = part.get_payload()
    if isinstance(payload, list):  # message/delivery-status: the stdlib splits header blocks
        return b"\n".join(_flatten(m, defects) for m in payload if isinstance(m, Message))
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _flatten(msg: Message, defects: list[str]) -> bytes:
    """Serialize a message object back to bytes (no refolding)."""
    fp = io.BytesIO()
    try:
        BytesGenerator(fp, mangle_from_=False, maxheaderlen=0).flatten(msg)
    except Exception as exc:
        defects.append(f"enclosed message not serialized ({type(exc).__name__})")
        return b""
    return fp.getvalue()


def _inner_subject(data: bytes, defects: list[str]) -> str:
    """Decoded Subject of an enclosed message given as bytes, "" if none."""
    head = data[:65536]
    ends = [i for i in (head.find(b"\n\n"), head.find(b"\r\n\r\n"), head.find(b"\r\r")) if i >= 0]
    if ends:
        head = head[: min(ends)]
    try:
        inner = BytesParser(_class=_Message, policy=_COMPAT32).parsebytes(head, headersonly=True)
    except Exception:
        return ""
    value = inner.get("subject")
    if value is None:
        return ""
    prepared = _prepare(value, inner, "subject", defects)
    return _decode_words(prepared, defects).strip()


def _sanitize_filename(name: str, index: int, content_type: str) -> str:
    """A safe basename (max 200 chars) or an "attachment-N.ext" fallback; never empty."""
    name = unicodedata.normalize("NFC", name or "")
    parts = [p for p in re.split(r"[\\/]", name) if p.strip(" .")]
    name = parts[-1] if parts else ""
    name = _FILENAME_DROP_RE.sub("", name)
    name = _FILENAME_SUB_RE.sub("_", name)
    name = " ".join(name.split()).rstrip(" .")
    if name.startswith("."):  # ".pdf" is an extension without a name; "..x" a hidden file
        rest = name.lstrip(" .")
        name = f"attachment-{index}.{rest}" if rest and "." not in rest else rest
    stem = name.split(".", 1)[0].upper()
    if stem in _WINDOWS_RESERVED:
        name = "_" + name
    if len(name) > _MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16 and stem:
            name = stem[: _MAX_FILENAME - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            name = name[:_MAX_FILENAME].rstrip(" .")
    if not name:
        name = f"attachment-{index}{_EXTENSIONS.get(content_type, '.bin')}"
    return name


# --------------------------------------------------------------------------- HTML rendering

_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)([^<>]*)>")
_DECL_RE = re.compile(r"<[!?][^<>]*>")
_SPACE_RE = re.compile(r"[ \t\r\n\f\v]+")
_BLANKS_RE = re.compile(r"\n{3,}")
_INLINE_SPACES_RE = re.compile(r"[ \t\xa0\u2000-\u200a\u202f\u205f\u3000]+")
_SKIP_TAGS = frozenset({"script", "style", "head", "template", "xml", "title"})
_LINE_TAGS = frozenset(
    [
        "div",
        "tr",
        "dt",
        "dd",
        "section",
        "article",
        "header",
        "footer",
        "nav",
        "aside",
        "form",
        "fieldset",
        "address",
        "center",
        "main",
        "figure",
        "figcaption",
        "caption",
        "details",
        "summary",
        "body",
        "html",
    ]
)
_PARA_TAGS = frozenset(
    ["p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "dl", "blockquote", "pre", "hr"]
)
_CELL_TAGS = frozenset({"td", "th"})


def _html_to_text(html: str) -> str:
    """Readable text from HTML: no tags/scripts/styles; paragraphs, breaks, list items kept."""
    out: list[str] = []
    pending = 0  # line breaks owed by block boundaries, written before the next text
    pos, n = 0, len(html)
    in_pre = 0
    missing_close: set[str] = set()

    def text(chunk: str) -> None:
        """Append text, writing the line breaks owed before it."""
        nonlocal pending
        if not chunk.strip():
            if not pending and chunk:
                out.append(" ")
            return
        if pending:
            out.append("\n" * pending)
            pending = 0
        out.append(chunk)

    while pos < n:
        lt = html.find("<", pos)
        if lt < 0:
            text(_html_chunk(html[pos:], in_pre))
            break
        if lt > pos:
            text(_html_chunk(html[pos:lt], in_pre))
        if html.startswith("<!--", lt):
            end = html.find("-->", lt + 4)
            pos = n if end < 0 else end + 3
            continue
        m = _TAG_RE.match(html, lt)
        if m is None:
            d = _DECL_RE.match(html, lt)
            if d is not None:
                pos = d.end()
            else:
                text("<")
                pos = lt + 1
            continue
        pos = m.end()
        closing, tag = m.group(1) == "/", m.group(2).lower()
        if not closing and tag in _SKIP_TAGS and not m.group(3).rstrip().endswith("/"):
            pos = _skip_element(html, tag, pos, missing_close)
        elif tag == "br":
            out.append("\n" * pending + "\n")
            pending = 0
        elif tag == "li":
            if not closing:
                pending = max(pending, 1)
                text("- ")
        elif tag in _PARA_TAGS:
            pending = 2 if out else 0
            if tag == "pre":
                in_pre = max(0, in_pre + (-1 if closing else 1))
        elif tag in _LINE_TAGS:
            pending = max(pending, 1) if out else 0
        elif tag in _CELL_TAGS and not closing:
            text(" ")
    lines = [_INLINE_SPACES_RE.sub(" ", line).strip() for line in "".join(out).split("\n")]
    return _BLANKS_RE.sub("\n\n", "\n".join(lines)).strip()


def _html_chunk(chunk: str, in_pre: int) -> str:
    """Text between tags: whitespace collapsed (except in <pre>), entities decoded."""
    if not in_pre:
        chunk = _SPACE_RE.sub(" ", chunk)
    elif "\r" in chunk:
        chunk = chunk.replace("\r\n", "\n").replace("\r", "\n")
    if "&" in chunk:
        chunk = htmllib.unescape(chunk)
    return chunk.replace("\x00", "")


def _skip_element(html: str, tag: str, pos: int, missing_close: set[str]) -> int:
    """Position after the end of a skipped element (script, style, head...)."""
    if tag not in missing_close:
        m = re.compile(rf"</{tag}\s*>", re.IGNORECASE).search(html, pos)
        if m is not None:
            return m.end()
        missing_close.add(tag)
    if tag == "head":  # unterminated head: resume at <body>
        m = re.compile(r"<body\b", re.IGNORECASE).search(html, pos)
        return m.start() if m is not None else pos
    if tag == "title":
        return pos
    return len(html)  # unterminated script/style: the rest is not text


# --------------------------------------------------------------------------- mail-parser


def _mailparser_body(
    msg: Message, limits: ParseLimits, defects: list[str]
) -> tuple[str, str, list[Attachment]]:
    """Second opinion from mail-parser when our walk failed; empty body if it fails too."""
    try:
        import mailparser

        mp = mailparser.MailParser(msg)
        html = (mp.text_html[0] if mp.text_html else "")[: limits.max_text_chars]
        text = mp.text_plain[0] if mp.text_plain else _html_to_text(html)
        attachments = []
        for i, att in enumerate(mp.attachments[: limits.max_parts], start=1):
            payload = att.get("payload") or ""
            if att.get("binary"):
                data = binascii.a2b_base64(payload)
            else:
                data = payload.encode("utf-8", "surrogateescape")
            ctype = str(att.get("mail_content_type") or "application/octet-stream").lower()
            cid = str(att.get("content-id") or "").strip().strip("<>")
            disp = str(att.get("content-disposition") or "").lower()
            attachments.append(
                Attachment(
                    filename=_sanitize_filename(str(att.get("filename") or ""), i, ctype),
                    content_type=ctype,
                    data=data,
                    sha256=hashlib.sha256(data).hexdigest(),
                    content_id=cid,
                    inline=disp.startswith("inline") or (not disp and bool(cid)),
                )
            )
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
        return text[: limits.max_text_chars], html, attachments
    except Exception as exc:
        log.debug("mail-parser failed too: %r", exc)
        defects.append(f"mail-parser failed too ({type(exc).__name__}); body not extracted")
        return "", "", []
