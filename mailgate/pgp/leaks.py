"""The sender's safety net: does a mail's visible text carry decrypted PGP content? Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable
from email import message_from_bytes
from email.policy import default as default_policy

# a decrypted line this long found in customer-facing mail holds the mail back
MIN_LEAK_LINE = 24
MIN_LEAK_TEXT = 8
_QUOTE = re.compile(r"^[ \t>|]*", re.M)
_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", _QUOTE.sub("", text)).strip().lower()


def _visible_text(raw: bytes) -> str:
    """Every text part of a message, decoded (quoted-printable, base64, charsets)."""
    msg = message_from_bytes(raw, policy=default_policy)
    texts: list[str] = [str(msg.get("Subject", ""))]
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        try:
            texts.append(part.get_content())
        except (LookupError, ValueError, AssertionError):
            data = part.get_payload(decode=True)
            texts.append(data.decode("utf-8", "replace") if isinstance(data, bytes) else "")
    return "\n".join(texts)


def leaked_secret(raw: bytes, secret_texts: Iterable[str]) -> bool:
    """Does this mail's visible text carry a decrypted text (or a long line of one)?"""
    haystack = ""
    for secret in secret_texts:
        whole = _norm(secret)
        needles = [whole] if len(whole) >= MIN_LEAK_TEXT else []
        needles += [n for n in map(_norm, secret.splitlines()) if len(n) >= MIN_LEAK_LINE]
        if not needles:
            continue
        if not haystack:
            haystack = _norm(_visible_text(raw))
        if any(n in haystack for n in needles):
            return True
    return False
