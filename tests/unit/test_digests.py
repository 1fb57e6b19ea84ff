"""The loop breaker's normalised text is the plain reading's: every line lowered, quoted
lines dropped, words joined by one space, digit runs as '#'."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailgate.pipeline.digests import _QUOTED, _normalised
from mailgate.pipeline.prepare import prepare

ROOT = Path(__file__).resolve().parents[2]
# every line end of str.splitlines, other Unicode spaces, digits of other scripts, a
# final sigma, each quote form with and without what it needs
TEXTS = [
    "Hello 12 world\n\n  again 345\n",
    "a\x0bb\x0cc\x1cd\x1de\x1ef\x85g\u2028h\u2029i\r\nj\rk",
    "tab\tand\u00a0nbsp\u3000ideographic 12\u2009thin",
    "Arabic \u0663\u0664 and Devanagari \u0967\u0968 digits, full-width \uff11\uff12",
    "ΟΔΟΣ\nΟΔΟΣ ΟΔΟΣ.\nΣ",
    "> quoted 1\nkept 2\n  > indented quote\n>",
    "On Mon, 1 Jan 2026, Ann wrote:\nkept\non a wrote: b\nwrote: alone",
    "Am 1.1.2026 schrieb Ann <a@b>:\nAm x schrieb y\nkept",
    "Le 1 janv. 2026, Ann a écrit :\nle x a écrit\nLE X A ÉCRIT:",
    "no quote here, but > inside a line and wrote: later",
    "",
    "\n\n\n",
    "ascii words only, no digit at all, long enough to be digested",
    "0",
    "ascii with one digit at the very end 9",
    "7 at the start, then words",
    "#1 and ## 22 #3# beside hashes",
]


def _plain(text: str) -> str:
    """The reading before the shortcuts (main at ba9641d)."""
    lines = [ln for ln in text.lower().splitlines() if not _QUOTED.match(ln)]
    return re.sub(r"\d+", "#", " ".join(" ".join(lines).split()))


def _corpus_texts() -> list[str]:
    folder = ROOT / "tests" / "data" / "corpus"
    prepared = [prepare(p.read_bytes()) for p in sorted(folder.rglob("*.eml"))]
    return [p.parsed.text for p in prepared if p.parsed is not None]


@pytest.mark.parametrize("text", TEXTS)
def test_each_text_normalises_as_the_plain_reading(text: str) -> None:
    for variant in (text, text.upper(), text.replace("\n", "\r\n"), text + "\n" + text):
        assert _normalised(variant) == _plain(variant)


def test_every_corpus_text_normalises_as_the_plain_reading():
    texts = _corpus_texts()
    assert len(texts) > 100
    assert [t[:60] for t in texts if _normalised(t) != _plain(t)] == []
