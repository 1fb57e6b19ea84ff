"""What a message's text and bytes digest to: its dedupe key and the loop breaker's digest.

Pure, and light on imports: the parse processes (pipeline/prepare.py) work these out
ahead of the database without loading the config models (`tests/unit/test_structure.py`
holds them to it).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict

from mailgate.parse.message import Parsed


def body_digest(raw: bytes) -> str:
    """Digest of the body with line ends and trailing blanks normalized.

    Two deliveries of one message (two mailboxes, an MTA retry, SMTP vs IMAP) differ in
    their trace headers and line ends, never in the body.
    """
    cut = raw.find(b"\n\n")
    crlf = raw.find(b"\r\n\r\n")
    if crlf != -1 and (cut == -1 or crlf < cut):
        cut = crlf
    body = raw[cut:] if cut != -1 else b""
    body = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").strip()
    return hashlib.sha256(body).hexdigest()


# this many near-identical messages from one sender on one ticket are a loop
RUN_IS_LOOP = 3
_QUOTED = re.compile(
    r"^\s*(>.*|on .{0,200} wrote:|am .{0,200} schrieb .{0,200}:|le .{0,200} a écrit\s*:)\s*$"
)


# shorter texts ("Hello", "Thanks!") are said again by people: never a loop by themselves
RUN_MIN_CHARS = 30


_DIGITS = re.compile(r"\d+")
_ASCII_DIGITS = re.compile(r"[0-9]+")  # (the same runs in an ASCII text, found faster)
_ASCII_DIGIT_BYTES = b"0123456789"


def _normalised(text: str) -> str:
    lowered = text.lower()
    if _may_quote(lowered):
        words = " ".join(ln for ln in lowered.splitlines() if not _QUOTED.match(ln)).split()
    else:  # every line kept: split() also splits at each of splitlines' line ends
        words = lowered.split()
    joined = " ".join(words)
    if not joined.isascii():
        return _DIGITS.sub("#", joined)
    return _ASCII_DIGITS.sub("#", joined) if _has_ascii_digit(joined) else joined


def _has_ascii_digit(ascii_text: str) -> bool:
    """Whether an ASCII text holds a digit: deleting them from its bytes costs a tenth of
    the digit pattern's scan (two thirds of the bench corpus's ASCII texts have none)."""
    data = ascii_text.encode("ascii")
    return len(data.translate(None, _ASCII_DIGIT_BYTES)) != len(data)


def _may_quote(lowered: str) -> bool:
    """Whether a line of `lowered` may match _QUOTED: each of its forms holds one of these."""
    return ">" in lowered or "wrote:" in lowered or "schrieb" in lowered or "a écrit" in lowered


def _digest(normalised: str) -> str:
    return hashlib.sha256(normalised.encode("utf-8", "surrogatepass")).hexdigest()


def text_digest(text: str) -> str:
    """Digest of a mail text with quotes, case, digits and spacing taken out: a responder's
    mails, each quoting the last and naming another date or number, digest alike."""
    return _digest(_normalised(text))


def repeat_digest(text: str) -> str | None:
    """`text_digest` of a text long enough to count as a repeat (None: a short one)."""
    normalised = _normalised(text)
    return None if len(normalised) < RUN_MIN_CHARS else _digest(normalised)


class DigestCache:
    """Digests of texts seen lately: a sender's earlier mails on a ticket are read again
    for each follow-up, and each was the text of a mail digested when it came in (texts up
    to 4,096 characters, the latest 1,024: a few MiB held)."""

    MAX_CHARS = 4096
    MAX_TEXTS = 1024

    def __init__(self) -> None:
        self._digests: OrderedDict[str, str] = OrderedDict()

    def remember(self, text: str, digest: str | None) -> None:
        """`digest` is `repeat_digest(text)` (None, a short text: nothing to keep)."""
        if digest is not None and len(text) <= self.MAX_CHARS:
            self._keep(text, digest)

    def digest(self, text: str) -> str:
        """`text_digest(text)`."""
        found = self._digests.get(text)
        if found is not None:
            self._digests.move_to_end(text)
            return found
        digest = text_digest(text)
        if len(text) <= self.MAX_CHARS:
            self._keep(text, digest)
        return digest

    def _keep(self, text: str, digest: str) -> None:
        self._digests[text] = digest
        self._digests.move_to_end(text)
        if len(self._digests) > self.MAX_TEXTS:
            self._digests.popitem(last=False)


SEEN = DigestCache()  # the worker's (one thread)


def run_length(digest: str | None, earlier: list[str], seen: DigestCache = SEEN) -> int:
    """How many of `earlier` plus this one (`repeat_digest` of its text) digest alike
    (1: this one is not a repeat)."""
    if digest is None or not earlier:
        return 1
    return 1 + sum(seen.digest(t) == digest for t in earlier)


def dedupe_key(p: Parsed, raw: bytes) -> str:
    """One article per (Message-ID, sender, body); without a Message-ID, per raw bytes.

    The body is part of the key so a reused Message-ID with other content is never
    dropped as a duplicate.
    """
    if p.message_id:
        basis = f"mid\x1f{p.message_id}\x1f{p.from_addr}\x1f{body_digest(raw)}"
    else:
        basis = f"raw\x1f{p.raw_sha256}"
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()
