"""Enclosed message/* parts, kept whole: their bytes and the subject to name them by."""

from __future__ import annotations

import io
from email.generator import BytesGenerator
from email.message import Message

from mailgate.parse.compat32 import parse_header_block
from mailgate.parse.headers import clean_header_value, decode_words

ENCLOSED_MESSAGES = frozenset({"message/rfc822", "message/global"})


def enclosed_bytes(part: Message, defects: list[str]) -> bytes:
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


def enclosed_subject(data: bytes, defects: list[str]) -> str:
    """Decoded Subject of an enclosed message given as bytes, "" if none."""
    head = data[:65536]
    ends = [i for i in (head.find(b"\n\n"), head.find(b"\r\n\r\n"), head.find(b"\r\r")) if i >= 0]
    if ends:
        head = head[: min(ends)]
    try:
        inner = parse_header_block(head)
    except Exception:
        return ""
    value = inner.get("subject")
    if value is None:
        return ""
    prepared = clean_header_value(value, inner, "subject", defects)
    return decode_words(prepared, defects).strip()
