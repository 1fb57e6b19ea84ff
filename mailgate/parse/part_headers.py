"""The MIME headers of one part (type, disposition, Content-ID, charset, file name)."""

from __future__ import annotations

import re
from email.message import Message
from typing import NamedTuple

from mailgate.parse.charsets import declared_charset
from mailgate.parse.headers import clean_header_value, decode_words, one_line

_MIME_HEADERS = frozenset(
    {"content-type", "content-disposition", "content-id", "content-transfer-encoding"}
)
_PARAM_RE = re.compile(r';[ \t\r\n]*([^=;\s]+)[ \t\r\n]*=[ \t\r\n]*("(?:[^"\\]|\\.)*"|[^;]*)')


class PartHead(NamedTuple):
    """The MIME headers of one part, read in one pass over its headers."""

    ctype: str
    ctype_params: dict[str, str] | None  # None: not simple, ask the stdlib
    disposition: str | None
    disposition_params: dict[str, str] | None
    content_id: str
    transfer_encoding: str | None  # the first Content-Transfer-Encoding as given (None: none)


def read_part_head(part: Message) -> PartHead:
    """Read Content-Type, Content-Disposition, Content-ID and Content-Transfer-Encoding of a
    part once."""
    found: dict[str, str] = {}
    for name, value in part.raw_items():
        if name[:1] not in ("c", "C"):  # every one of them starts with "content-"
            continue
        key = name.lower()
        if key in _MIME_HEADERS and key not in found:
            found[key] = value if isinstance(value, str) else str(value)
    ctype_params: dict[str, str] | None = {}
    raw_ctype = found.get("content-type")
    if raw_ctype is None:
        ctype = part.get_default_type()
    else:
        main, ctype_params = _split_params(raw_ctype)
        valid = main.count("/") == 1 and main.isascii()
        ctype = main if valid else "text/plain"  # the compat32 rule (and no 8-bit type)
    disposition, disposition_params = None, {}
    raw_disposition = found.get("content-disposition")
    if raw_disposition is not None:
        disposition, disposition_params = _split_params(raw_disposition)
    return PartHead(
        ctype,
        ctype_params,
        disposition,
        disposition_params,
        _content_id(found),
        found.get("content-transfer-encoding"),
    )


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


def part_charset(part: Message, head: PartHead) -> str | None:
    """Declared charset label, lowercased, or None."""
    if head.ctype_params is not None:
        label = (head.ctype_params.get("charset") or "").strip().lower()
        return label or None
    return declared_charset(part)


def part_filename(part: Message, head: PartHead, defects: list[str]) -> str:
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
    return decode_words(one_line(str(name)), defects).strip()


def _filename_8bit(part: Message, defects: list[str]) -> str | None:
    """Filename from Content-Disposition/Content-Type headers carrying raw 8-bit bytes."""
    tmp = Message()
    for name, value in part.raw_items():
        if name.lower() in ("content-disposition", "content-type") and name not in tmp:
            tmp[name] = clean_header_value(value, None, "filename", defects)
    return tmp.get_filename()


def _content_id(found: dict[str, str]) -> str:
    """Content-ID without angle brackets, "" if none."""
    value = found.get("content-id")
    if value is None:
        return ""
    cid = "".join(value.split()).strip("<>")
    if not cid.isascii():
        cid = cid.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return one_line(cid)  # no whitespace is left: drops the control characters
