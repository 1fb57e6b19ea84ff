"""ASCII armor in text: PGP MESSAGE and clearsigned spans, redaction, OpenPGP packet tags. Pure.

Decrypted content never goes into the customer-visible text (docs/pgp.md): every encrypted
block there becomes `SECURED`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

SECURED = "| secured information |"

BEGIN_MESSAGE = "-----BEGIN PGP MESSAGE-----"
END_MESSAGE = "-----END PGP MESSAGE-----"
_BEGIN_SIGNED = "-----BEGIN PGP SIGNED MESSAGE-----"
_BEGIN_SIG = "-----BEGIN PGP SIGNATURE-----"
_END_SIG = "-----END PGP SIGNATURE-----"
_SCAN_MARKERS = (
    b"-----BEGIN PGP ",
    b"pgp-",  # application/pgp-encrypted, -signature, -keys; micalg=pgp-sha256
    b"PGP-",
    b"Pgp-",
    b".pgp",
    b".gpg",
    b".asc",
    b".PGP",
    b".GPG",
    b".ASC",
)
_QUOTE_PREFIX = re.compile(r"^[ \t>]*")
_ARMOR_LINE = re.compile(
    r"^(-----(BEGIN|END) PGP [A-Z ,/0-9]+-----|[A-Za-z-]+: .*|=[A-Za-z0-9+/]{4})$"
)


def scan(raw: bytes, text: str = "") -> bool:
    """Cheap: could this message hold PGP material? False means open_message can be skipped.

    Byte search only. Armor inside base64-encoded text parts is caught when the already
    decoded body is passed as `text`.
    """
    return any(marker in raw for marker in _SCAN_MARKERS) or "-----BEGIN PGP " in text


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    prefix: str  # what stood before the BEGIN marker on its line ("> " when quoted)
    armored: str  # the block with quote prefixes removed, LF line ends


def _lines(s: str) -> Iterable[tuple[int, str]]:
    pos = 0
    for line in s.splitlines(keepends=True):
        yield pos, line
        pos += len(line)


def _join(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def message_spans(s: str) -> list[Span]:
    """Armored PGP MESSAGE blocks in text, quoted or not; an unterminated one runs to the end."""
    spans: list[Span] = []
    if BEGIN_MESSAGE not in s:
        return spans
    inside: tuple[int, str] | None = None
    body: list[str] = []
    for pos, line in _lines(s):
        if inside is None:
            col = line.find(BEGIN_MESSAGE)
            if col >= 0:
                inside, body = (pos, line[:col]), [BEGIN_MESSAGE]
            continue
        col = line.find(END_MESSAGE)
        if col >= 0:
            body.append(END_MESSAGE)
            start, prefix = inside
            spans.append(Span(start, pos + col + len(END_MESSAGE), prefix, _join(body)))
            inside = None
            continue
        body.append(_QUOTE_PREFIX.sub("", line).rstrip())
    if inside is not None:
        start, prefix = inside
        spans.append(Span(start, len(s), prefix, _join(body)))
    return spans


def clearsigned_spans(s: str) -> list[Span]:
    """Unquoted, complete clearsigned blocks (BEGIN SIGNED MESSAGE .. END SIGNATURE)."""
    spans: list[Span] = []
    if _BEGIN_SIGNED not in s:
        return spans
    start: int | None = None
    seen_sig = False
    for pos, line in _lines(s):
        bare = line.rstrip()
        if start is None:
            if bare == _BEGIN_SIGNED:
                start, seen_sig = pos, False
            continue
        if bare == _BEGIN_SIG:
            seen_sig = True
        elif bare == _END_SIG and seen_sig:
            end = pos + len(line.rstrip("\r\n"))
            spans.append(Span(start, end, "", s[start:end]))
            start = None
    return spans


def redact(text: str) -> str:
    """Replace every armored PGP MESSAGE block (also quoted ones) by SECURED."""
    spans = message_spans(text)
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for span in spans:
        out += [text[pos : span.start], span.prefix, SECURED]
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


def redact_message(raw: bytes, text: str) -> str:
    """The customer-visible text of a message nobody could open: no ciphertext in it."""
    try:
        return SECURED if b"multipart/encrypted" in raw.lower() else redact(text)
    except Exception:  # the fallback of a fallback: show nothing rather than ciphertext
        return SECURED


def norm_armor(armored: str) -> str:
    """The armor without whitespace: the same block, however it was wrapped or quoted."""
    return re.sub(r"\s+", "", armored)


def first_packet_tag(data: bytes) -> int | None:
    """Tag of the first OpenPGP packet, looking through ASCII armor; None if unsure."""
    head = data.lstrip()
    if head.startswith(b"-----BEGIN PGP"):
        lines = head[:4096].split(b"\n")
        i = 1
        while i < len(lines) and lines[i].strip():  # armor headers end at a blank line
            i += 1
        b64 = b"".join(line.strip() for line in lines[i + 1 : i + 4])
        try:
            head = base64.b64decode(b64[: len(b64) // 4 * 4], validate=True)
        except (binascii.Error, ValueError):
            return None
    if not head or not head[0] & 0x80:
        return None
    first = head[0]
    return first & 0x3F if first & 0x40 else (first >> 2) & 0x0F


def binary_openpgp_encrypted(data: bytes) -> bool:
    """First packet is a public-key or symmetric-key encrypted session key (RFC 4880 4.2)."""
    return bool(data) and data.lstrip()[:1] != b"-" and first_packet_tag(data) in (1, 3)


def packet_digest(ciphertext: bytes) -> str:
    """sha256 of the OpenPGP packets: the same for any armor wrapping, quoting or line ends."""
    if b"-----BEGIN PGP" in ciphertext[:200]:
        lines = [ln.strip(" \t>") for ln in ciphertext.decode("latin-1").splitlines()]
        b64 = "".join(ln for ln in lines if ln and not _ARMOR_LINE.match(ln))
        try:
            data = base64.b64decode(b64 + "=" * (-len(b64) % 4))
        except (binascii.Error, ValueError):
            data = re.sub(rb"\s+", b"", ciphertext)
    else:
        data = ciphertext
    return hashlib.sha256(data).hexdigest()
