"""RFC 2047 encoded words as the standard library writes them, in linear time.  Pure.

`email.header.Header(text, "utf-8").encode()` fits a non-ASCII header into lines by
encoding every prefix of the text again, one character longer each time ("brute force",
its comment says), and each time measures the quoted-printable form with a Python sum over
the bytes: about 240 µs for one subject line. `formataddr` measures a non-ASCII name the
same way once. `UTF8` is the "utf-8" Charset with both measured as the text grows: a
quoted-printable length is a sum per byte, a base64 length follows from the byte count,
and UTF-8 encodes a text as the concatenation of its characters' encodings, so every
prefix measures what the standard library measures and the words and lines are the same.
tests/unit/test_encoded_words.py compares both with the standard library's over random
texts.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import base64mime, quoprimime
from email.charset import RFC2047_CHROME_LEN, Charset
from types import ModuleType

# the octets quoted-printable writes as one character in a header (the rest take three)
_QP_ONE = bytes(o for o in range(256) if quoprimime.header_length(bytes([o])) == 1)


def _qp_length(data: bytes) -> int:
    """`quoprimime.header_length(data)` without the loop."""
    return len(data) + 2 * len(data.translate(None, _QP_ONE))


def _base64_length(n: int) -> int:
    """`base64mime.header_length` of n bytes."""
    return (n + 2) // 3 * 4


class _Utf8(Charset):
    """Charset("utf-8") (header encoding: the shorter of base64 and quoted-printable)."""

    def __init__(self) -> None:
        super().__init__("utf-8")

    @staticmethod
    def _shorter(data: bytes) -> ModuleType:
        return base64mime if _base64_length(len(data)) < _qp_length(data) else quoprimime

    def header_encode(self, string: str) -> str:
        data = string.encode("utf-8")
        return self._shorter(data).header_encode(data, "utf-8")

    def header_encode_lines(self, string: str, maxlengths: Iterator[int]) -> list[str | None]:
        """As Charset.header_encode_lines: each line as many characters as fit in its
        length, measured as they are added."""
        module = self._shorter(string.encode("utf-8"))
        qp = module is quoprimime
        extra = len(self.get_output_charset()) + RFC2047_CHROME_LEN
        lines: list[str | None] = []
        current: list[str] = []
        size = 0  # the line's length in its encoding (qp) or its bytes (base64)
        maxlen = next(maxlengths) - extra
        for character in string:
            data = character.encode("utf-8")
            grown = size + (_qp_length(data) if qp else len(data))
            if (grown if qp else _base64_length(grown)) > maxlen:
                if not lines and not current:  # nothing fits on the first line
                    lines.append(None)
                else:
                    lines.append(module.header_encode("".join(current).encode("utf-8"), "utf-8"))
                current = [character]
                size = _qp_length(data) if qp else len(data)
                maxlen = next(maxlengths) - extra
            else:
                current.append(character)
                size = grown
        lines.append(module.header_encode("".join(current).encode("utf-8"), "utf-8"))
        return lines


UTF8 = _Utf8()
