"""Charset labels as mail uses them, mapped to Python codecs, and tolerant byte decoding."""

from __future__ import annotations

import codecs
import re
from email.message import Message
from functools import lru_cache

from mailgate.parse.detect import guess_cyrillic

_NON_ASCII_RE = re.compile(r"[^\x00-\x7f\ufffd]")
_C1_RE = re.compile(rb"[\x80-\x9f]")
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


@lru_cache(maxsize=512)
def python_codec(label: str) -> str | None:
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


def decode_bytes(data: bytes, label: str | None, where: str, defects: list[str]) -> str:
    """Decode with the declared charset, falling back (utf-8, then latin-1) with a defect."""
    if not data:
        return ""
    codec = python_codec(label) if label else None
    if label and codec is None:
        text, how = guess_decode(data)
        defects.append(f"unknown charset {label}, decoded as {how} ({where})")
        return text
    if codec is None or codec == "ascii":
        if data.isascii():
            return data.decode("ascii")
        text, how = guess_decode(data)
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


def guess_decode(data: bytes) -> tuple[str, str]:
    """Decode bytes of unknown charset: utf-8, mostly utf-8, Cyrillic if guessed, or latin-1."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    sample = data[:65536].decode("utf-8", "replace")
    bad = sample.count("\ufffd")
    if len(_NON_ASCII_RE.findall(sample)) > bad:  # real utf-8 sequences outnumber the bad bytes
        return data.decode("utf-8", "replace"), "utf-8 with replacement characters"
    cyrillic = guess_cyrillic(data[:65536])
    if cyrillic is not None:
        return data.decode(cyrillic, "replace"), f"{cyrillic} (guessed)"
    if _C1_RE.search(data):  # C1 controls are never text: windows-1252 quotes and dashes
        try:
            return data.decode("cp1252"), "windows-1252"
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1"), "latin-1"


def declared_charset(part: Message) -> str | None:
    """The part's declared charset label, or None."""
    try:
        return part.get_content_charset()
    except Exception:
        return None
