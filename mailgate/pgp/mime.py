"""Where PGP sits in a MIME message: encrypted parts, signed regions, part texts. Pure."""

from __future__ import annotations

import re
from email.message import Message

from mailgate.parse.filenames import safe_filename
from mailgate.pgp.armor import BEGIN_MESSAGE, binary_openpgp_encrypted

ENCRYPTED_SUFFIXES = (".pgp", ".gpg", ".asc")


def filename(part: Message) -> str:
    name = part.get_filename() or part.get_param("name") or ""
    return safe_filename(name, "") if isinstance(name, str) else ""


def looks_encrypted(part: Message, payload: bytes) -> bool:
    """An encrypted attachment: armored PGP MESSAGE, or binary OpenPGP with a .pgp-like name."""
    if BEGIN_MESSAGE.encode() in payload[:1_000_000]:
        return True
    hinted = filename(part).lower().endswith(ENCRYPTED_SUFFIXES)
    return (hinted or part.get_content_type() == "application/pgp-encrypted") and (
        binary_openpgp_encrypted(payload)
    )


def is_attachment(part: Message) -> bool:
    disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    return disposition == "attachment" or bool(part.get_filename())


def is_pgp_protocol(part: Message, protocol: str) -> bool:
    value = part.get_param("protocol")
    return isinstance(value, str) and value.strip().lower() == protocol


def decode_text(data: bytes, charset: str | None = None) -> str | None:
    """Text if it looks like text, else None (binary)."""
    if b"\x00" in data:
        return None
    for cs in dict.fromkeys(("utf-8", charset or "utf-8", "latin-1")):
        try:
            text = data.decode(cs)
        except (LookupError, UnicodeDecodeError):
            continue
        controls = sum(
            1 for ch in text if (ord(ch) < 32 and ch not in "\t\r\n\f") or 0x7F <= ord(ch) < 0xA0
        )
        return text if controls <= len(text) // 20 else None
    return None


def part_text(part: Message) -> str:
    data = part.get_payload(decode=True) or b""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def entity_bytes(part: Message) -> bytes:
    try:
        return part.as_bytes()
    except Exception:  # a broken entity that cannot be serialized: nothing to keep
        return b""


def signed_region(source: bytes, boundary: str) -> bytes | None:
    """The first part of a multipart/signed exactly as in `source`, CRLF-canonical (RFC 3156 5)."""
    marker = re.escape(boundary.encode("latin-1", "replace"))
    delim = re.compile(rb"^--" + marker + rb"(?:--)?[ \t]*\r?$", re.M)
    found = delim.finditer(source)
    first, second = next(found, None), next(found, None)
    if first is None or second is None:
        return None
    start = first.end() + 1  # past the LF that ends the delimiter line
    end = second.start()
    if end > 0 and source[end - 1 : end] == b"\n":  # that line break belongs to the delimiter
        end -= 1
        if end > 0 and source[end - 1 : end] == b"\r":
            end -= 1
    if end < start:
        return None
    return re.sub(rb"\r?\n", b"\r\n", source[start:end])
