"""Guess the charset of undeclared 8-bit text that is not UTF-8: Cyrillic or Western.

Cyrillic text is words of 8-bit bytes (Western text has an accent here and there), and
KOI8-R and windows-1251 map the same letters to opposite cases and to different letters,
so the one that reads as the most frequent Russian letters, mostly lower case, is the
sender's. charset-normalizer was measured and guessed worse on
header-sized samples (docs/robustness.md), so this small rule is ours.
"""

from __future__ import annotations

import re

_CYRILLIC = ("koi8-r", "cp1251")
_HIGH_RUN_RE = re.compile(rb"[\x80-\xff]{3,}")
_FREQUENT = frozenset("оеаинтсрвлкмдпу")  # the most frequent letters of Russian text


def guess_cyrillic(data: bytes) -> str | None:
    """ "koi8-r" or "cp1251" if `data` reads as Cyrillic words in one of them, else None."""
    high = sum(1 for b in data if b >= 0x80)
    if high < 4:
        return None
    in_words = sum(len(run) for run in _HIGH_RUN_RE.findall(data))
    if in_words < 0.6 * high:
        return None  # isolated accents (or pairs, "Grüße"): Western text
    best, best_score = None, 0.0
    for codec in _CYRILLIC:
        text = data.decode(codec, "replace")
        letters = [c for c in text if "\u0400" <= c <= "\u04ff"]
        if len(letters) < 0.8 * high:
            continue
        score = sum((c.lower() in _FREQUENT) + 0.2 * c.islower() for c in letters)
        if score > best_score:
            best, best_score = codec, score
    return best
