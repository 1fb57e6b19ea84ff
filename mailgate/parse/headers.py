"""Header values: unfolding, raw 8-bit text, RFC 2047 encoded-words, control characters."""

from __future__ import annotations

import binascii
import re
from email.message import Message

from mailgate.parse.charsets import declared_charset, decode_bytes, guess_decode, python_codec

_FOLD_RE = re.compile(r"(?:\r\n|\r|\n)[ \t]?")
_CTRL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
CTRL_TAB_RE = re.compile(r"[\x00-\x1f\x7f]")
_ENCODED_WORD_RE = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_NON_ASCII_RUN_RE = re.compile(r"([^\x00-\x7f]+)")


def short(value: str, n: int = 60) -> str:
    """A value shortened for a defect message."""
    return repr(value if len(value) <= n else value[:n] + "...")


def clean_header_value(value: object, hint: Message | None, where: str, defects: list[str]) -> str:
    """Unfold a raw header value and decode its 8-bit bytes (encoded-words left alone)."""
    s = value if isinstance(value, str) else str(value)
    if s.isascii() and not CTRL_TAB_RE.search(s):
        return s.strip()  # the common case
    if "\n" in s or "\r" in s:
        s = _FOLD_RE.sub(" ", s)
    if not s.isascii():
        s = _decode_8bit(s, hint, where, defects)
    return one_line(s).strip()


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
    label = declared_charset(hint) if hint is not None else None  # often the body's charset
    codec = python_codec(label) if label else None
    if codec and codec not in ("utf-8", "ascii"):
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass
    text, how = guess_decode(data)
    defects.append(f"8-bit header {where} is not utf-8, decoded as {how}")
    return text


def decode_words(s: str, defects: list[str]) -> str:
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
            out.append(decode_bytes(bytes(buf), buf_charset, "encoded-word", defects))
            buf = bytearray()
        buf_charset = ""

    for m in _ENCODED_WORD_RE.finditer(s):
        gap = s[pos : m.start()]
        if gap and not (prev_word and not gap.strip()):
            flush()
            out.append(gap)
        charset = m.group(1).split("*", 1)[0].lower()
        pos = m.end()
        if not m.group(3).isascii():  # raw 8-bit inside the word: already decoded text
            flush()
            defects.append("8-bit bytes inside an encoded-word")
            out.append(_mixed_word(charset, m.group(2), m.group(3), defects))
            prev_word = True
            continue
        data = _word_bytes(m.group(2), m.group(3))
        if data is None:
            flush()
            defects.append(f"undecodable encoded-word {short(m.group(0), 40)}")
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
    return one_line("".join(out))


def _mixed_word(charset: str, encoding: str, payload: str, defects: list[str]) -> str:
    """An encoded-word payload holding raw text: its ASCII runs decoded, the rest kept."""
    out = []
    for piece in _NON_ASCII_RUN_RE.split(payload):
        if piece.isascii():
            data = _word_bytes(encoding, piece) if piece else b""
            out.append(decode_bytes(data or b"", charset, "encoded-word", defects))
        else:
            out.append(piece)
    return "".join(out)


def one_line(s: str) -> str:
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
